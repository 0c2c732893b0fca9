package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/ai-data-analyst/analyst/store"
)

// Desktop token lifetimes, as the original: valid 30 days, refreshable 7 days past expiry.
const (
	DesktopTokenTTL   = 30 * 24 * time.Hour
	DesktopRefreshTTL = 7 * 24 * time.Hour
	imageURLTTL       = 7 * 24 * time.Hour
)

// ErrInvalidToken is a desktop token that is malformed, expired, from another issuer or revoked.
var ErrInvalidToken = errors.New("invalid token")

// Desktop is the desktop app's channel: HS256 tokens bound to the user's desktop link (so
// unlinking revokes them), the WebSocket gateway with heartbeats and a per-user connection
// limit, and the offline queue (in the store) that a reconnecting app receives until it
// acknowledges each notification by id.
type Desktop struct {
	Secret    []byte
	Issuer    string // default "data-analyst"
	Scheme    string // default "data-analyst"
	Service   *Service
	Logger    *slog.Logger
	PublicURL string // prefix of image URLs in frames ("" = relative)

	AuthTimeout  time.Duration // default 10s
	PingInterval time.Duration // default 30s
	MaxMissed    int           // pings without a pong before closing; default 3
	MaxConns     int           // per user; default 5

	mu    sync.Mutex
	conns map[string]map[*deskConn]bool
}

type deskClaims struct {
	LinkID string `json:"lid"`
	jwt.RegisteredClaims
}

func (d *Desktop) issuer() string {
	if d.Issuer != "" {
		return d.Issuer
	}
	return "data-analyst"
}

// mint signs a token for user under their current link.
func (d *Desktop) mint(user, linkID string) (string, error) {
	now := d.Service.Now()
	c := deskClaims{LinkID: linkID, RegisteredClaims: jwt.RegisteredClaims{
		Subject: user, Issuer: d.issuer(), IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(DesktopTokenTTL)),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(d.Secret)
}

// Authorize links the user's desktop app (keeping an existing link) and returns the URL that
// hands the app its token.
func (d *Desktop) Authorize(user string) (string, error) {
	link, err := d.Service.State.LinkDesktop(user, d.Service.Now())
	if err != nil {
		return "", err
	}
	tok, err := d.mint(user, link.ID)
	if err != nil {
		return "", err
	}
	scheme := d.Scheme
	if scheme == "" {
		scheme = "data-analyst"
	}
	return scheme + "://auth?token=" + url.QueryEscape(tok), nil
}

// verify checks signature, algorithm, issuer and expiry (with leeway past it) and that the
// token's link is the user's current one.
func (d *Desktop) verify(token string, leeway time.Duration) (string, error) {
	var c deskClaims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return d.Secret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(d.issuer()), jwt.WithExpirationRequired(),
		jwt.WithLeeway(leeway), jwt.WithTimeFunc(d.Service.Now))
	if err != nil || c.Subject == "" {
		return "", ErrInvalidToken
	}
	link, ok, err := d.Service.State.DesktopLink(c.Subject)
	if err != nil {
		return "", err
	}
	if !ok || !hmac.Equal([]byte(link.ID), []byte(c.LinkID)) {
		return "", ErrInvalidToken // unlinked: revoked
	}
	return c.Subject, nil
}

// Verify returns the user of a valid, unrevoked token.
func (d *Desktop) Verify(token string) (string, error) { return d.verify(token, 0) }

// Refresh trades a token (up to 7 days past its expiry, still linked) for a new one.
func (d *Desktop) Refresh(token string) (string, error) {
	user, err := d.verify(token, DesktopRefreshTTL)
	if err != nil {
		return "", err
	}
	link, _, err := d.Service.State.DesktopLink(user)
	if err != nil {
		return "", err
	}
	return d.mint(user, link.ID)
}

// Unlink revokes every token of the user, drops the offline queue and closes open connections.
func (d *Desktop) Unlink(user string) error {
	if err := d.Service.State.UnlinkDesktop(user); err != nil {
		return err
	}
	d.mu.Lock()
	var open []*deskConn
	for c := range d.conns[user] {
		open = append(open, c)
	}
	d.mu.Unlock()
	for _, c := range open {
		go c.ws.Close(websocket.StatusPolicyViolation, "unlinked") // the close handshake waits for the app
	}
	return nil
}

// SignImage returns a query string that lets the holder fetch a notification's image for a
// while without a session (the desktop app has only its token).
func (d *Desktop) SignImage(id string, until time.Time) string {
	exp := strconv.FormatInt(until.Unix(), 10)
	return "exp=" + exp + "&sig=" + d.imageSig(id, exp)
}

func (d *Desktop) imageSig(id, exp string) string {
	m := hmac.New(sha256.New, d.Secret)
	m.Write([]byte("image\x00" + id + "\x00" + exp))
	return hex.EncodeToString(m.Sum(nil))
}

// CheckImage verifies a signature made by SignImage.
func (d *Desktop) CheckImage(id, exp, sig string) bool {
	n, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || d.Service.Now().Unix() > n {
		return false
	}
	return hmac.Equal([]byte(sig), []byte(d.imageSig(id, exp)))
}

// Frame is the JSON a desktop app receives for a notification.
type Frame struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	Title     string `json:"title"`
	Message   string `json:"message"`
	Script    string `json:"script"`
	Timestamp string `json:"timestamp"`
	ImageURL  string `json:"image_url,omitempty"`
}

func (d *Desktop) frame(n store.Notification) Frame {
	f := Frame{Type: "notification", ID: n.ID, Title: n.Title, Message: n.Message, Script: n.Script,
		Timestamp: n.Time.UTC().Format("2006-01-02T15:04:05Z")}
	if n.Image != "" {
		f.ImageURL = d.PublicURL + "/api/notifications/images/" + n.ID + "?" + d.SignImage(n.ID, d.Service.Now().Add(imageURLTTL))
	}
	return f
}

// Name is the channel's name in the inbox.
func (d *Desktop) Name() string { return "desktop" }

// Deliver queues the notification for the user's desktop app and writes it to every open
// connection. Queued counts as delivered: the app gets it when it reconnects.
func (d *Desktop) Deliver(ctx context.Context, dl Delivery) Status {
	user := dl.Note.User
	if _, ok, err := d.Service.State.DesktopLink(user); err != nil {
		return Failed(err)
	} else if !ok {
		return StatusNotLinked
	}
	if err := d.Service.State.QueueDesktop(user, dl.Note.ID); err != nil {
		return Failed(err)
	}
	sent := 0
	for _, c := range d.open(user) {
		if c.send(ctx, d.frame(dl.Note)) == nil {
			sent++
		}
	}
	if sent > 0 {
		return StatusDelivered
	}
	return StatusQueued
}

func (d *Desktop) open(user string) []*deskConn {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*deskConn
	for c := range d.conns[user] {
		out = append(out, c)
	}
	return out
}

// Connections returns the number of open connections per user.
func (d *Desktop) Connections() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]int{}
	for u, cs := range d.conns {
		out[u] = len(cs)
	}
	return out
}

// deskConn is one authenticated connection. It remembers what it sent, so a notification
// delivered live while the queue is being replayed is not sent twice.
type deskConn struct {
	ws     *websocket.Conn
	mu     sync.Mutex
	sent   map[string]bool
	missed atomic.Int32
}

func (c *deskConn) send(ctx context.Context, f Frame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.Type == "notification" {
		if c.sent[f.ID] {
			return nil
		}
		c.sent[f.ID] = true
	}
	return writeJSON(ctx, c.ws, f)
}

func writeJSON(ctx context.Context, ws *websocket.Conn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return ws.Write(ctx, websocket.MessageText, b)
}

// clientFrame is what an app sends: auth, pong, ack.
type clientFrame struct {
	Type  string `json:"type"`
	Token string `json:"token"`
	ID    string `json:"id"`
}

// ServeWS is GET /ws/notifications. Authentication is the first frame, not a cookie, so the
// origin check is off: a page on another site gains nothing by opening the socket.
func (d *Desktop) ServeWS(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	defer ws.CloseNow()
	ws.SetReadLimit(64 << 10)
	ctx := r.Context()
	user, err := d.authenticate(ctx, ws)
	if err != nil {
		return
	}
	c := &deskConn{ws: ws, sent: map[string]bool{}}
	// auth_ok goes first: a live delivery waits for the connection's lock.
	c.mu.Lock()
	if !d.register(user, c) {
		c.mu.Unlock()
		writeJSON(ctx, ws, map[string]string{"type": "auth_error", "message": "Too many connections"})
		ws.Close(websocket.StatusPolicyViolation, "too many connections")
		return
	}
	defer d.unregister(user, c)
	err = writeJSON(ctx, ws, map[string]string{"type": "auth_ok", "username": user})
	c.mu.Unlock()
	if err != nil {
		return
	}
	d.replay(ctx, user, c)
	d.session(ctx, user, c)
}

// authenticate reads the auth frame, which must come within AuthTimeout.
func (d *Desktop) authenticate(ctx context.Context, ws *websocket.Conn) (string, error) {
	fail := func(msg string) (string, error) {
		writeJSON(ctx, ws, map[string]string{"type": "auth_error", "message": msg})
		ws.Close(websocket.StatusPolicyViolation, msg)
		return "", errors.New(msg)
	}
	// A read whose context ends closes the socket, so the timeout is a timer that answers
	// first and then closes.
	timedOut := atomic.Bool{}
	timer := time.AfterFunc(orDefault(d.AuthTimeout, 10*time.Second), func() {
		timedOut.Store(true)
		writeJSON(ctx, ws, map[string]string{"type": "auth_error", "message": "Auth timeout"})
		ws.Close(websocket.StatusPolicyViolation, "auth timeout")
	})
	typ, data, err := ws.Read(ctx)
	if !timer.Stop() || timedOut.Load() {
		return "", errors.New("auth timeout")
	}
	if err != nil {
		return "", err
	}
	if typ != websocket.MessageText {
		ws.Close(websocket.StatusUnsupportedData, "")
		return "", errors.New("binary auth frame")
	}
	var f clientFrame
	if json.Unmarshal(data, &f) != nil {
		return fail("Invalid JSON")
	}
	if f.Type != "auth" || f.Token == "" {
		return fail("Expected auth message with token")
	}
	user, err := d.Verify(f.Token)
	if err != nil {
		return fail("Invalid token")
	}
	return user, nil
}

func (d *Desktop) register(user string, c *deskConn) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conns == nil {
		d.conns = map[string]map[*deskConn]bool{}
	}
	limit := d.MaxConns
	if limit <= 0 {
		limit = 5
	}
	if len(d.conns[user]) >= limit {
		return false
	}
	if d.conns[user] == nil {
		d.conns[user] = map[*deskConn]bool{}
	}
	d.conns[user][c] = true
	return true
}

func (d *Desktop) unregister(user string, c *deskConn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.conns[user], c)
	if len(d.conns[user]) == 0 {
		delete(d.conns, user)
	}
}

// replay sends what waits in the user's offline queue, oldest first.
func (d *Desktop) replay(ctx context.Context, user string, c *deskConn) {
	ids, err := d.Service.State.DesktopQueue(user)
	if err != nil {
		d.Logger.Error("desktop queue", "user", user, "error", err)
		return
	}
	for _, id := range ids {
		n, err := d.Service.State.Notification(id)
		if err != nil {
			d.Service.State.AckDesktop(user, id) // gone from the inbox: nothing to send
			continue
		}
		if c.send(ctx, d.frame(n)) != nil {
			return
		}
	}
}

// session reads pongs and acks and sends pings until the app goes away or misses MaxMissed
// pings in a row.
func (d *Desktop) session(ctx context.Context, user string, c *deskConn) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer cancel()
		for {
			_, data, err := c.ws.Read(ctx)
			if err != nil {
				return
			}
			var f clientFrame
			if json.Unmarshal(data, &f) != nil {
				continue
			}
			switch f.Type {
			case "pong":
				c.missed.Store(0)
			case "ack":
				d.ack(user, f.ID)
			}
		}
	}()
	maxMissed := int32(d.MaxMissed)
	if maxMissed <= 0 {
		maxMissed = 3
	}
	tick := time.NewTicker(orDefault(d.PingInterval, 30*time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if c.missed.Load() >= maxMissed {
				c.ws.Close(websocket.StatusPolicyViolation, "heartbeat timeout")
				return
			}
			c.missed.Add(1)
			if c.send(ctx, Frame{Type: "ping"}) != nil {
				return
			}
		}
	}
}

func (d *Desktop) ack(user, id string) {
	removed, err := d.Service.State.AckDesktop(user, id)
	if err != nil {
		d.Logger.Error("desktop ack", "user", user, "error", err)
		return
	}
	if removed {
		if err := d.Service.State.SetChannelStatus(id, d.Name(), string(StatusAcknowledged)); err != nil && !errors.Is(err, store.ErrNotFound) {
			d.Logger.Error("desktop ack status", "error", err)
		}
	}
}
