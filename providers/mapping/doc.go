// Package mapping maps an upstream's claims to Latchkey's and decides
// whether the user may sign in, with expressions in CEL
// (github.com/google/cel-go), type-checked when the config is validated.
//
// A connector embeds Config in its own config type, so every connector
// has the same keys:
//
//	claimMapping:            # each optional; unset keeps the connector's default
//	  email:    "claims.upn"
//	  name:     "claims.given_name + ' ' + claims.family_name"
//	  username: "claims.email.split('@')[0]"
//	  groups:   "claims.groups.map(g, 'corp:' + g)"
//	deny:                    # first rule that is true refuses the user, with its reason
//	  - expr: "'contractors' in groups"
//	    reason: "Contractors sign in through the partner portal."
//	allow:                   # when set, at least one must be true
//	  - "email.endsWith('@example.com')"
//	notAllowedReason: "..."  # the reason when no allow rule matched
//
// Data flow: the connector builds the Identity its upstream gives (its
// default claim choices), then calls Mapper.Apply with the upstream's
// claims. Apply evaluates the claimMapping expressions over the variable
// `claims` (map(string, dyn): the merged ID token and userinfo claims, or
// the OAuth2 userinfo document) and overwrites the Identity's fields; then
// it evaluates the deny rules and the allow rules over `claims` and the
// mapped values `subject`, `email`, `emailVerified`, `name`, `username`
// and `groups`. A refusal is a *providers.DeniedError carrying the
// admin's reason.
//
// Type checking: email, name and username must be string (or dyn, checked
// when evaluated), groups list(string) (or a list of dyn, or dyn), rules
// bool (or dyn). A claim that may be absent must be guarded, as in
//
//	has(claims.x) ? claims.x : ""
//	claims.?x.orValue("")
//
// since evaluating a missing key is an error and the login fails closed.
//
// When claimMapping.email yields another address than the connector's
// default, emailVerified becomes false unless the connector trusts emails
// (trustEmail): the upstream verified the address it reported, not the
// one the expression built.
//
// Evaluation is bounded: every program has a CEL cost limit (CostLimit)
// and is interrupted when the request's context ends. Available
// extensions: CEL's standard library, strings (split, lowerAscii, ...),
// sets (sets.contains, sets.intersects), optional types, and numeric
// comparisons across int and double (JSON numbers arrive as double).
package mapping
