package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Mailpit is a running mailpit (an SMTP sink with an HTTP API) on
// 127.0.0.1, started by StartMailpit and stopped by its PID.
type Mailpit struct {
	SMTPHost string
	SMTPPort int
	API      string // http://127.0.0.1:P
	t        testing.TB
}

// MailpitMessage is one message as mailpit's API returns it.
type MailpitMessage struct {
	ID      string `json:"ID"`
	Subject string `json:"Subject"`
	To      []struct {
		Address string `json:"Address"`
	} `json:"To"`
	Text string `json:"Text"`
	HTML string `json:"HTML"`
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartMailpit starts mailpit (skip or fail when it is not installed: see
// .ci/tools.sh) with extra flags, and waits until its API answers.
func StartMailpit(t testing.TB, extra ...string) *Mailpit {
	t.Helper()
	bin := Program(t, "mailpit")
	sp, hp := freePort(t), freePort(t)
	args := append([]string{"--listen", "127.0.0.1:" + strconv.Itoa(hp), "--smtp", "127.0.0.1:" + strconv.Itoa(sp),
		"--disable-version-check", "--database", t.TempDir() + "/mailpit.db"}, extra...)
	cmd := exec.Command(bin, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	done := Start(t, "mailpit", cmd, &out)
	m := &Mailpit{SMTPHost: "127.0.0.1", SMTPPort: sp, API: "http://127.0.0.1:" + strconv.Itoa(hp), t: t}
	for i := 0; i < 200; i++ {
		select {
		case <-done:
			t.Fatalf("mailpit exited: %s", out.String())
		default:
		}
		resp, err := http.Get(m.API + "/api/v1/messages")
		if err == nil {
			resp.Body.Close()
			if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(sp)); err == nil {
				c.Close()
				return m
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("mailpit did not come up: %s", out.String())
	return nil
}

func (m *Mailpit) getJSON(path string, v any) {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.API+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		m.t.Fatalf("mailpit %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		m.t.Fatalf("mailpit %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		m.t.Fatalf("mailpit %s: %v", path, err)
	}
}

// Messages returns the summaries of every message (newest first), each
// with ID, Subject and To.
func (m *Mailpit) Messages() []MailpitMessage {
	m.t.Helper()
	var list struct {
		Messages []MailpitMessage `json:"messages"`
	}
	m.getJSON("/api/v1/messages", &list)
	return list.Messages
}

// Latest returns the newest message to address, with its Text and HTML;
// it fails the test when there is none.
func (m *Mailpit) Latest(address string) MailpitMessage {
	m.t.Helper()
	for _, s := range m.Messages() {
		for _, to := range s.To {
			if strings.EqualFold(to.Address, address) {
				var full MailpitMessage
				m.getJSON("/api/v1/message/"+url.PathEscape(s.ID), &full)
				return full
			}
		}
	}
	m.t.Fatalf("no message to %s in mailpit", address)
	return MailpitMessage{}
}

// Count returns how many messages went to address.
func (m *Mailpit) Count(address string) int {
	m.t.Helper()
	n := 0
	for _, s := range m.Messages() {
		for _, to := range s.To {
			if strings.EqualFold(to.Address, address) {
				n++
			}
		}
	}
	return n
}

// String names the sink.
func (m *Mailpit) String() string { return fmt.Sprintf("mailpit smtp %s:%d", m.SMTPHost, m.SMTPPort) }
