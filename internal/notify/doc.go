// Package notify owns what the SMS and e-mail senders share: retrying a
// send with exponential backoff, and the error a send that gave up
// returns. The senders themselves live in notify/sms (Twilio, a signed
// webhook) and notify/email (SMTP with per-language templates).
//
// A sender never logs or wraps the message body, the recipient or the
// code it carries: errors say which provider failed and how (status,
// network error), so they are safe to log and to audit.
package notify
