package broker

import (
	"context"
	"errors"

	"github.com/latchkeyid/latchkey/broker/oauth2"
	"github.com/latchkeyid/latchkey/storage"
)

// AccountView is one account on the account chooser. SID identifies it
// in the form (the public session id, never the cookie).
type AccountView struct {
	SID      string
	Username string
	Name     string
	Email    string
	Active   bool
}

// ChooserView is what the account chooser shows.
type ChooserView struct {
	RequestID  string
	CSRF       string
	ClientName string
	Accounts   []AccountView
}

// AccountChooser returns what the account chooser shows for request id:
// the accounts signed in in this browser (prompt=select_account, or a
// browser whose active session ended while others remain).
func (b *Broker) AccountChooser(ctx context.Context, id, binding string, bs BrowserSessions) (ChooserView, *PageError) {
	req, client, perr := b.requestPage(ctx, id, binding)
	if perr != nil {
		return ChooserView{}, perr
	}
	accts, err := b.accounts(ctx, bs)
	if err != nil {
		return ChooserView{}, &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}
	}
	view := ChooserView{RequestID: req.ID, CSRF: CSRFToken(binding, req.ID), ClientName: clientName(client)}
	for _, a := range accts {
		u, err := b.store.GetUser(ctx, a.sess.UserID)
		if errors.Is(err, storage.ErrNotFound) || (err == nil && u.Disabled) {
			continue
		}
		if err != nil {
			return ChooserView{}, &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}
		}
		view.Accounts = append(view.Accounts, AccountView{SID: a.sess.SID, Username: u.Username, Name: u.Name, Email: u.Email, Active: a.active})
	}
	return view, nil
}

// SelectAccount answers the account chooser for request id: another is
// "use another account" (the password form follows, and the current
// account stays in the browser); otherwise sid names the chosen account,
// which becomes the browser's active session, and the login continues as
// that user. A sid this browser does not hold shows the chooser again.
func (b *Broker) SelectAccount(ctx context.Context, id, binding, csrf string, bs BrowserSessions, sid string, another bool, meta RequestMeta) Result {
	req, client, perr := b.requestPage(ctx, id, binding)
	if perr != nil {
		return Result{Page: perr}
	}
	if !checkCSRF(binding, id, csrf) {
		return pageErr(400, "Form expired", "The form was not valid for this sign-in. Go back to the application and start again.", errors.New("csrf token mismatch"))
	}
	if req.UserID != "" {
		return pageErr(400, "Already signed in", "This sign-in has already chosen an account. Go back to the application and start again.", errors.New("account chosen twice"))
	}
	if another {
		req.AddAccount = true
		return b.next(ctx, req, StepLogin)
	}
	bs = bs.normalize()
	accts, err := b.accounts(ctx, bs)
	if err != nil {
		return b.errorRedirect(req, oauth2.ErrServerError("", err))
	}
	var chosen *account
	current := "" // the live active session, which becomes another account
	for i := range accts {
		if accts[i].sess.SID == sid && sid != "" {
			chosen = &accts[i]
		}
		if accts[i].active {
			current = accts[i].cookie
		}
	}
	if chosen == nil {
		return Result{Next: StepSelectAccount, RequestID: req.ID}
	}
	req.AccountChosen = true
	var c Cookies
	next := BrowserSessions{Active: chosen.cookie, Others: bs.Others}
	if !chosen.active {
		c.SessionCookie = chosen.cookie
		next.Others = withOthers(bs.Others, current, chosen.cookie)
		c.SetOthers, c.Others = true, next.Others
	}
	res := b.dispatch(ctx, req, client, next)
	res.Cookies = mergeCookies(res.Cookies, c)
	return res
}
