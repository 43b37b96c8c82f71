package sms

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/latchkeyid/latchkey/internal/notify"
)

// DefaultTwilioBaseURL is Twilio's API.
const DefaultTwilioBaseURL = "https://api.twilio.com"

// TwilioOptions configure the Twilio sender. Either From (a number) or
// MessagingServiceSID is required.
type TwilioOptions struct {
	BaseURL             string // default DefaultTwilioBaseURL
	AccountSID          string
	AuthToken           string
	From                string
	MessagingServiceSID string
	// HTTPClient must be the hardened client (internal/httpclient).
	HTTPClient *http.Client
	Retry      notify.Retry
}

// Twilio sends through Twilio's Messages API:
// POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json with a form
// body To, From (or MessagingServiceSid) and Body, basic auth SID:token.
type Twilio struct {
	o   TwilioOptions
	url string
}

var _ Sender = (*Twilio)(nil)

// NewTwilio checks o and returns the sender.
func NewTwilio(o TwilioOptions) (*Twilio, error) {
	var errs []error
	if o.AccountSID == "" {
		errs = append(errs, errors.New("accountSID: required"))
	}
	if o.AuthToken == "" {
		errs = append(errs, errors.New("authToken: required"))
	}
	if (o.From == "") == (o.MessagingServiceSID == "") {
		errs = append(errs, errors.New("from or messagingServiceSID: exactly one is required"))
	}
	if o.HTTPClient == nil {
		errs = append(errs, errors.New("HTTPClient: required"))
	}
	if o.BaseURL == "" {
		o.BaseURL = DefaultTwilioBaseURL
	}
	if u, err := url.Parse(o.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("baseURL %q: not an http(s) URL", o.BaseURL))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("sms: twilio: %w", err)
	}
	return &Twilio{o: o, url: strings.TrimRight(o.BaseURL, "/") + "/2010-04-01/Accounts/" + url.PathEscape(o.AccountSID) + "/Messages.json"}, nil
}

// Send posts one message.
func (t *Twilio) Send(ctx context.Context, m Message) error {
	form := url.Values{"To": {m.To}, "Body": {m.Body}}
	if t.o.MessagingServiceSID != "" {
		form.Set("MessagingServiceSid", t.o.MessagingServiceSID)
	} else {
		form.Set("From", t.o.From)
	}
	body := form.Encode()
	return t.o.Retry.Do(ctx, "sms via twilio", func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, strings.NewReader(body))
		if err != nil {
			return notify.Permanent(fmt.Errorf("build request: %w", err))
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		req.SetBasicAuth(t.o.AccountSID, t.o.AuthToken)
		resp, err := t.o.HTTPClient.Do(req)
		if err != nil {
			return fmt.Errorf("twilio: %w", scrub(err))
		}
		return answer("twilio", resp)
	})
}

// scrub keeps the request URL (which holds the account SID, not a
// secret, but nothing the user typed either) and drops nothing else; it
// exists so a *url.Error never carries a query string.
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
