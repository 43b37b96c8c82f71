// Package webhook owns outbound identity events: the outbox written in the
// same transaction as the change, signing (Standard Webhooks) and delivery
// with retries, claimed by any replica.
package webhook
