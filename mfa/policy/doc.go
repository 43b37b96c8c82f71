// Package policy decides what second factor a login needs. It is pure:
// rules from the config, the login's client, connector and user, the
// session's steps and the request's acr_values in; a Decision out. The
// broker acts on the decision and asks again after every step.
//
// # Rules
//
// A Rule applies by default, per client, per connector and per group. Its
// Mode is "off" (no second factor is asked for), "optional" (a user who
// has enrolled a factor that counts must use it; one who has not is not
// asked to enroll) or "required" (every user must use one, enrolling one
// right after login if they have none). Factors lists the factor types
// that count (empty: all); MaxAge makes a second factor older than it stop
// counting; NoEnrollment refuses, instead of enrolling, a user who has no
// factor that reaches what is needed.
//
// The rules that apply to a login (the default, its client's, its
// connector's, and each of the user's groups') combine so that the most
// restrictive wins: the highest mode (off < optional < required), the
// intersection of the Factors lists that are set (of optional and required
// rules), the shortest MaxAge, NoEnrollment if any rule sets it. So "off"
// never exempts anything a stricter rule asks for, and rules that share no
// factor type leave nothing that counts (Unmet when a factor is needed).
//
// # Levels
//
// The acr levels and amr rules are CONTRACTS.md's (mfa.AMR, mfa.ACRFor).
// A required (or optional and enrolled) rule asks for urn:latchkey:acr:mfa
// reached with factors that count. acr_values are read in order of
// preference: the session meets the request when it meets any listed value
// (each raised to what the rules ask); values outside the table are
// ignored, and a request of only such values is Unmet: never a silent
// downgrade. When upstream amr values include "mfa" (a connector with
// trustUpstreamAMR), they count only while no rule restricts Factors.
//
// # Decisions
//
//   - Allow: nothing more is needed.
//   - Challenge: verify one of Factors (enrolled types). For a step-up
//     these are exactly the factors that, added to the session, reach the
//     target: only the missing factor is asked for. Also returned, with
//     the user's enrolled factors, before an Enroll when the user already
//     has a factor and has not verified one in this session: a password
//     alone never adds a factor to an account that has one.
//   - Enroll: the user must enroll one of Factors now (never recovery
//     codes, which back up another factor).
//   - Unmet: answer the client error=unmet_authentication_requirements
//     with Reason as the description.
package policy
