package web_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestPagesRenderInParallel: pages bound once per language (boundPage)
// and rendered at the same time each come out in their request's
// language.
func TestPagesRenderInParallel(t *testing.T) {
	f := newFixture(t)
	langs := []string{"de", "fr", "ja", "es", "en"}
	errs := make(chan string, 100)
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := langs[i%len(langs)]
			req, _ := http.NewRequest(http.MethodGet, f.issuer+"/login?req=no-such-request", nil)
			req.Header.Set("Accept-Language", want)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), `<html lang="`+want+`">`) || resp.Header.Get("Content-Language") != want {
				errs <- fmt.Sprintf("want %s, got %s: %.200s", want, resp.Header.Get("Content-Language"), body)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
