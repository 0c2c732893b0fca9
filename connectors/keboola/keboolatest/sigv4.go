package keboolatest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
)

// verifySigV4 checks an S3 request's AWS Signature Version 4 from first principles (canonical
// request, string to sign, derived key), written apart from the client's signer so a bug there
// cannot hide. It returns an S3 error code and message, or "" when the request is authentic.
func verifySigV4(r *http.Request, keyID, secret, session string, now time.Time) (code, msg string) {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return "AccessDenied", "Access Denied"
	}
	fields := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	cred := strings.Split(fields["Credential"], "/")
	if len(cred) != 5 || cred[4] != "aws4_request" || cred[3] != "s3" {
		return "AuthorizationHeaderMalformed", "The authorization header is malformed."
	}
	if cred[0] != keyID {
		return "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."
	}
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil || !strings.HasPrefix(amzDate, cred[1]) {
		return "AccessDenied", "X-Amz-Date is missing or does not match the credential scope."
	}
	if d := now.Sub(t); d > 15*time.Minute || d < -15*time.Minute {
		return "RequestTimeTooSkewed", "The difference between the request time and the current time is too large."
	}
	if r.Header.Get("X-Amz-Security-Token") != session {
		return "InvalidToken", "The provided token is malformed or otherwise invalid."
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	for _, need := range []string{"host", "x-amz-content-sha256", "x-amz-date", "x-amz-security-token"} {
		if !slices.Contains(signed, need) {
			return "AccessDenied", fmt.Sprintf("Header %s must be signed.", need)
		}
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		return "InvalidRequest", "Missing required header for this request: x-amz-content-sha256"
	}

	var canonHeaders strings.Builder
	for _, h := range signed {
		v := r.Header.Get(h)
		if h == "host" {
			v = r.Host
		}
		canonHeaders.WriteString(h + ":" + strings.Join(strings.Fields(v), " ") + "\n")
	}
	path, rawQuery, _ := strings.Cut(r.RequestURI, "?")
	creq := strings.Join([]string{r.Method, path, canonicalQuery(rawQuery), canonHeaders.String(),
		fields["SignedHeaders"], payload}, "\n")
	scope := strings.Join(cred[1:], "/")
	sum := sha256.Sum256([]byte(creq))
	sts := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	key := []byte("AWS4" + secret)
	for _, p := range cred[1:] {
		key = hmacSHA256(key, p)
	}
	want := hex.EncodeToString(hmacSHA256(key, sts))
	if !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method."
	}
	return "", ""
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// canonicalQuery sorts the already-encoded query pairs by name, then value.
func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	pairs := strings.Split(raw, "&")
	for i, p := range pairs {
		if !strings.Contains(p, "=") {
			pairs[i] = p + "="
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}
