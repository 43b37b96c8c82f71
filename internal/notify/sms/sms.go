package sms

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/latchkeyid/latchkey/internal/notify"
)

// Message is one text message. To is an E.164 number (+ and digits).
type Message struct {
	To   string
	Body string
}

// String hides the number and the text.
func (m Message) String() string { return "sms.Message{...}" }

// Sender sends text messages.
type Sender interface {
	// Send delivers m to the provider; the error wraps
	// notify.ErrSendFailed when it gave up.
	Send(ctx context.Context, m Message) error
}

// answer turns an HTTP answer into nil, a retryable error, or a permanent
// one. The body is drained, never quoted (it may echo the message).
func answer(provider string, resp *http.Response) error {
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return nil
	case s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500:
		return fmt.Errorf("%s answered %d", provider, s)
	default:
		return notify.Permanent(fmt.Errorf("%s answered %d", provider, s))
	}
}
