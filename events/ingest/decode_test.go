package ingest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// echoDecode "decodes" an entry into one event whose ID is the entry, and
// fails or panics on the entries that ask for it.
func echoDecode(entry []byte, now time.Time) ([]events.Event, []events.Dropped, error) {
	switch s := string(entry); {
	case s == "panic":
		panic("the decoder broke")
	case strings.HasPrefix(s, "bad"):
		return nil, nil, errors.New(s)
	default:
		return []events.Event{{ID: s, Time: now}}, []events.Dropped{{Field: s}}, nil
	}
}

// Entries decoded by the workers, from many handlers at once, come back to
// the handler that gave them, each with its own result; after close, the
// handlers decode on their own.
func TestDecodersReturnEachHandlerItsOwnResult(t *testing.T) {
	d := startDecoders(echoDecode)
	check := func(d *decoders, entry string) error {
		now := time.Unix(int64(len(entry)), 0)
		evs, dropped, err := d.decode([]byte(entry), now)
		if strings.HasPrefix(entry, "bad") {
			if err == nil || err.Error() != entry {
				return fmt.Errorf("%s: error %v, want %s", entry, err, entry)
			}
			return nil
		}
		if err != nil || len(evs) != 1 || evs[0].ID != entry || !evs[0].Time.Equal(now) || len(dropped) != 1 || dropped[0].Field != entry {
			return fmt.Errorf("%s: got %v %v %v", entry, evs, dropped, err)
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64*200)
	for h := range 64 {
		wg.Go(func() {
			for i := range 200 {
				entry := fmt.Sprintf("entry-%d-%d", h, i)
				if i%7 == 0 {
					entry = "bad-" + entry
				}
				if err := check(d, entry); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	d.close()
	d.close() // idempotent
	if err := check(d, "after-close"); err != nil {
		errs <- err
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A panic of the decoder on a worker is raised again on the handler's
// goroutine, where the policy's recoverer dead-letters the entry, with the
// decoder's stack; the worker goes on decoding.
func TestDecoderPanicReachesTheHandler(t *testing.T) {
	d := startDecoders(echoDecode)
	defer d.close()
	got := func() (r any) {
		defer func() { r = recover() }()
		_, _, _ = d.decode([]byte("panic"), time.Now())
		return nil
	}()
	p, ok := got.(*decodePanic)
	if !ok {
		t.Fatalf("decode recovered %v (%T), want a *decodePanic", got, got)
	}
	if p.value != "the decoder broke" || !strings.Contains(p.String(), "echoDecode") {
		t.Errorf("the panic lost its value or the decoder's stack:\n%s", p)
	}
	for i := range 10 { // every worker still decodes
		entry := fmt.Sprint("after-", i)
		if evs, _, err := d.decode([]byte(entry), time.Now()); err != nil || len(evs) != 1 || evs[0].ID != entry {
			t.Fatalf("after the panic: %v %v", evs, err)
		}
	}
}
