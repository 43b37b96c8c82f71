// Package email sends e-mail over SMTP (net/smtp): implicit TLS (port
// 465), STARTTLS (required, the default) or plain (only for a local sink
// such as mailpit), with PLAIN auth when a username is set. Every message
// is multipart/alternative, text and HTML, rendered from templates per
// language: templates/<lang>/<name>.txt (text/template, which also
// defines "subject") and templates/<lang>/<name>.html (html/template).
// English ("en") is the fallback directory, and the built-in templates
// live only there: their texts are {{t "English text"}} calls that the
// Translator (the hosted pages' catalog, web/i18n) renders in the
// message's language, the language of the request that caused it. A
// directory of another language replaces the templates for it.
//
// Sends are retried with backoff (notify.Retry); 5xx SMTP replies are
// permanent. Errors name the SMTP stage that failed, never the recipient
// or the content.
package email
