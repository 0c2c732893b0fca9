package portal

import (
	"reflect"
	"testing"

	"github.com/gorilla/securecookie"
)

func TestCookieSerializerRoundTripsEveryValueKind(t *testing.T) {
	hash, block := securecookie.GenerateRandomKey(64), securecookie.GenerateRandomKey(32)
	codec := securecookie.New(hash, block).SetSerializer(cookieSerializer{})
	in := map[any]any{
		keySession: "sid-1", keyCSRF: "tok", "next": "/catalog?q=a&b=<c>",
		"oidc_started": int64(1764368000),
		flashKey:       []any{flash{Kind: "error", Text: `bad "input" <b>`}, flash{Kind: "info", Text: "ok"}},
	}
	enc, err := codec.Encode(cookieName, in)
	if err != nil {
		t.Fatal(err)
	}
	out := map[any]any{}
	if err := codec.Decode(cookieName, enc, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n in  %#v\n out %#v", in, out)
	}
	if _, err := codec.Encode(cookieName, map[any]any{"x": 1.5}); err == nil {
		t.Fatal("a value of an unknown type was accepted")
	}
}

// A cookie written by the gob codec of earlier versions still signs its user in.
func TestCookieSerializerReadsGobCookies(t *testing.T) {
	hash, block := securecookie.GenerateRandomKey(64), securecookie.GenerateRandomKey(32)
	old := securecookie.New(hash, block)
	enc, err := old.Encode(cookieName, map[any]any{keySession: "sid-7", flashKey: []any{flash{Kind: "info", Text: "hi"}}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[any]any{}
	if err := securecookie.New(hash, block).SetSerializer(cookieSerializer{}).Decode(cookieName, enc, &out); err != nil {
		t.Fatal(err)
	}
	if out[keySession] != "sid-7" || !reflect.DeepEqual(out[flashKey], []any{flash{Kind: "info", Text: "hi"}}) {
		t.Fatalf("gob cookie decoded to %#v", out)
	}
}
