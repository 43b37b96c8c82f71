// Package i18n owns the languages of the hosted pages: the embedded
// message files (active.<lang>.toml, English text as message id), the
// choice of a page's language (ui_locales of the authorization request,
// then the language cookie set by the switcher, then Accept-Language)
// and the translate function the templates call as {{t "..."}}. The same
// message files hold the texts of the e-mails and SMS messages
// (internal/notify/email templates); Catalog.Translate serves them as
// notify.Translator.
package i18n
