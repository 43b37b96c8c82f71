// Package sms sends text messages: the Sender interface its callers
// (mfa/otp) depend on, a Twilio sender (Messages API) and a generic
// webhook sender that POSTs a JSON body signed as Standard Webhooks
// specify (webhook-id, webhook-timestamp, webhook-signature: HMAC-SHA256
// under a whsec_ secret), so any gateway can be put behind a small
// receiver.
//
// Both retry network errors, 408, 429 and 5xx answers with backoff
// (notify.Retry) and give up at once on other 4xx answers. Errors name
// the provider and the HTTP status, never the number or the text.
package sms
