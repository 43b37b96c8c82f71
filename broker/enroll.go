package broker

import (
	"context"
	"log/slog"

	"github.com/latchkeyid/latchkey/mfa"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
)

// enrolledStep ends an enrollment of any factor whose credential is
// stored: it records step in the session and, when the user has no
// recovery codes yet, makes a set. The returned view then holds the codes
// to show once (Result carries only the rotated cookie, and ContinueMFA
// continues the login); otherwise the Result continues the login.
func (b *Broker) enrolledStep(ctx context.Context, req *AuthRequest, client storage.Client, bs BrowserSessions, binding string, meta RequestMeta, step session.Step) (Result, MFAView) {
	codes, err := b.ensureRecovery(ctx, req.UserID)
	if err != nil {
		b.log.ErrorContext(ctx, "make recovery codes", slog.Any("error", err))
	}
	if len(codes) == 0 {
		return b.afterStep(ctx, req, client, bs, step), MFAView{}
	}
	b.mfaEvent(ctx, req, client, meta, mfa.TypeRecovery)("mfa.enrolled", nil)
	cookie, _, err := b.sessions.AddStep(ctx, bs.Active, req.UserID, step)
	if err != nil {
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), MFAView{}
	}
	req.SessionCookie = cookie
	req.MFAFactors = []string{mfa.TypeRecovery} // ContinueMFA needs a factor page in progress
	if err := b.saveRequest(ctx, req); err != nil {
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), MFAView{}
	}
	v := b.mfaView(req, client, binding)
	v.RecoveryCodes = codes
	return Result{Cookies: Cookies{SessionCookie: cookie}}, v
}
