package web

// accountFactorMessageIDs are the ids the code that adds a second factor
// from the account page hands to {{t .Title}}, {{t .Error}} and
// {{t .Message}} (broker/account_factors.go), kept apart from
// pageMessageIDs.
var accountFactorMessageIDs = []string{
	"Add an authenticator app", "Add a security key or passkey",
	"This set-up has expired or was already finished; start again from your account page.",
	"Authenticator apps are not available here.", "Security keys and passkeys are not available here.",
	"The authenticator app is added.", "The security key or passkey is added.",
	"The second factor is added. Here are your recovery codes: each signs you in once if you lose your second factors. They are shown only once.",
	"That code is not valid; check your authenticator and try again.", "Your security key or passkey was not accepted; try again.",
	"Give the security key or passkey a name of 1 to 64 characters.",
}
