package web

// accountLinkMessageIDs are the messages of broker/account_link.go and
// broker/account_signin.go the pages show through {{t .Title}}, {{t
// .Message}} and {{t .Error}} (templates are checked by
// TestEveryMessageInEveryLanguage).
var accountLinkMessageIDs = []string{
	"Link another service",
	"Link",
	"The service is linked to your account. You can sign in with it from now on.",
	"That account is already linked to yours; nothing changed.",
	"That account is already linked to another user. Nothing was changed.",
	"That service cannot be linked here.",
	"The service did not sign you in, so nothing was linked. Try again if you want to link it.",
	"The service's answer could not be verified, so nothing was linked. Try again in a moment.",
	"The service is not answering right now, so nothing was linked. Try again in a moment.",
	"Link not recognised",
	"Linking was started in another browser or another session. Open your account page and start again.",
	"Your session has ended, so nothing was linked. Open your account page to sign in again.",
	"This sign-in was started in another browser or has expired. Open your account page again.",
	"Sign-in cancelled",
	"You are not signed in. Open your account page to try again.",
	"The sign-in could not be completed. Open your account page to try again.",
	"Your account is disabled. Contact your administrator.",
	"Your session has ended. Open your account page to sign in again.",
}
