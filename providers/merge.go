package providers

// IdentityMerger is implemented by connectors whose upstream sends part of
// the profile only once. Sign in with Apple sends the user's name only at
// the first login, never again (not in later logins, not in ID tokens, not
// at refresh): a later Identity has an empty Name that means "not sent",
// not "removed".
//
// When the broker links an Identity to an identity it stored before (a
// later login of the same (connector, subject)), it calls MergeIdentity
// with what it stored and what the connector returned, and stores and uses
// the result. The broker must therefore keep the Identity fields it
// stored (at least Name) for connectors that implement this.
type IdentityMerger interface {
	// MergeIdentity returns fresh completed from stored where the
	// upstream did not send a field again. stored and fresh have the same
	// Subject.
	MergeIdentity(stored, fresh Identity) Identity
}
