package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ai-data-analyst/analyst/store"
)

// Telegram limits (characters, counted as code points).
const (
	maxText    = 4096
	maxCaption = 1024
)

// Telegram is the bot: a Bot API client, the long-polling loop with its commands, and the
// Telegram channel.
type Telegram struct {
	BaseURL   string // default https://api.telegram.org
	Token     string
	Client    *http.Client
	Service   *Service
	Logger    *slog.Logger
	PortalURL string // shown in /start, where the code is entered

	PollTimeout  time.Duration // long-poll wait; default 30s
	MaxRetryWait time.Duration // longest retry_after honoured in one wait; default 60s
	MinBackoff   time.Duration // first wait after a failed poll; default 1s
	MaxBackoff   time.Duration // default 5m (a rejected token or a second poller)
}

// APIError is an error reply of the Bot API.
type APIError struct {
	Method      string
	Code        int
	Description string
	RetryAfter  int
}

func (e *APIError) Error() string {
	return fmt.Sprintf("telegram %s: %d %s", e.Method, e.Code, e.Description)
}

func (t *Telegram) base() string {
	if t.BaseURL != "" {
		return strings.TrimRight(t.BaseURL, "/")
	}
	return "https://api.telegram.org"
}

func (t *Telegram) client() *http.Client {
	if t.Client != nil {
		return t.Client
	}
	return http.DefaultClient
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// call posts one Bot API method and decodes its result. The token is part of the URL, so URL
// errors are reported without it.
func (t *Telegram) call(ctx context.Context, method string, body io.Reader, contentType string, result any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base()+"/bot"+t.Token+"/"+method, body)
	if err != nil {
		return fmt.Errorf("telegram %s: bad base URL", method)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := t.client().Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) {
			err = ue.Unwrap() // *url.Error would print the URL with the token
		}
		return fmt.Errorf("telegram %s: %w", method, err)
	}
	defer resp.Body.Close()
	var reply struct {
		OK          bool            `json:"ok"`
		Result      json.RawMessage `json:"result"`
		ErrorCode   int             `json:"error_code"`
		Description string          `json:"description"`
		Parameters  struct {
			RetryAfter int `json:"retry_after"`
		} `json:"parameters"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&reply); err != nil || !reply.OK {
		e := &APIError{Method: method, Code: resp.StatusCode, Description: reply.Description, RetryAfter: reply.Parameters.RetryAfter}
		if reply.ErrorCode != 0 {
			e.Code = reply.ErrorCode
		}
		if e.Description == "" {
			e.Description = http.StatusText(resp.StatusCode)
		}
		return e
	}
	if result != nil {
		return json.Unmarshal(reply.Result, result)
	}
	return nil
}

func (t *Telegram) callJSON(ctx context.Context, method string, payload, result any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	return t.call(ctx, method, bytes.NewReader(b), "application/json", result)
}

// withRetry repeats a send after a 429 (waiting retry_after), a 5xx or a network error, up to
// three more times.
func (t *Telegram) withRetry(ctx context.Context, send func() error) error {
	wait := time.Second
	for attempt := 0; ; attempt++ {
		err := send()
		var ae *APIError
		retryable := err != nil && (!errors.As(err, &ae) || ae.Code == http.StatusTooManyRequests || ae.Code >= 500)
		if !retryable || attempt >= 3 || ctx.Err() != nil {
			return err
		}
		d := wait
		if ae != nil && ae.RetryAfter > 0 {
			d = time.Duration(ae.RetryAfter) * time.Second
			if max := orDefault(t.MaxRetryWait, time.Minute); d > max {
				return fmt.Errorf("%w (retry after %s is too long to wait)", err, d)
			}
		}
		t.Logger.Info("telegram send will be retried", "wait", d, "error", err)
		if sleep(ctx, d) != nil {
			return err
		}
		wait *= 2
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// isParseError is Telegram rejecting our Markdown ("can't parse entities").
func isParseError(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == http.StatusBadRequest && strings.Contains(strings.ToLower(ae.Description), "parse")
}

// Button is an inline keyboard button that sends callback data.
type Button struct {
	Text string `json:"text"`
	Data string `json:"callback_data"`
}

// SendText sends a message in legacy Markdown, cut to 4096 characters, with optional buttons
// (one per row). If Telegram cannot parse the Markdown it is sent again as plain text.
func (t *Telegram) SendText(ctx context.Context, chat int64, text string, buttons []Button) error {
	payload := map[string]any{"chat_id": chat, "text": Cut(text, maxText), "parse_mode": "Markdown"}
	if len(buttons) > 0 {
		rows := make([][]Button, len(buttons))
		for i, b := range buttons {
			rows[i] = []Button{b}
		}
		payload["reply_markup"] = map[string]any{"inline_keyboard": rows}
	}
	send := func() error {
		return t.withRetry(ctx, func() error { return t.callJSON(ctx, "sendMessage", payload, nil) })
	}
	err := send()
	if isParseError(err) {
		delete(payload, "parse_mode")
		err = send()
	}
	return err
}

// SendPhoto sends an image with a caption (cut to 1024 characters), falling back to a plain
// caption if the Markdown does not parse.
func (t *Telegram) SendPhoto(ctx context.Context, chat int64, imagePath, caption string) error {
	img, err := os.ReadFile(imagePath)
	if err != nil {
		return err
	}
	caption = Cut(caption, maxCaption)
	send := func(markdown bool) error {
		return t.withRetry(ctx, func() error {
			var body bytes.Buffer
			w := multipart.NewWriter(&body)
			w.WriteField("chat_id", strconv.FormatInt(chat, 10))
			if caption != "" {
				w.WriteField("caption", caption)
				if markdown {
					w.WriteField("parse_mode", "Markdown")
				}
			}
			fw, err := w.CreateFormFile("photo", "chart"+filepath.Ext(imagePath))
			if err != nil {
				return err
			}
			fw.Write(img)
			w.Close()
			return t.call(ctx, "sendPhoto", &body, w.FormDataContentType(), nil)
		})
	}
	err = send(true)
	if isParseError(err) {
		err = send(false)
	}
	return err
}

// Name is the channel's name in the inbox.
func (t *Telegram) Name() string { return "telegram" }

// Deliver sends a notification to the user's linked chat.
func (t *Telegram) Deliver(ctx context.Context, d Delivery) Status {
	link, ok, err := t.Service.State.TelegramLink(d.Note.User)
	if err != nil {
		return Failed(err)
	}
	if !ok {
		return StatusNotLinked
	}
	text := Text(d.Note.Title, d.Note.Message)
	if d.ImagePath != "" {
		err = t.SendPhoto(ctx, link.ChatID, d.ImagePath, text)
	} else {
		err = t.SendText(ctx, link.ChatID, text, nil)
	}
	if err != nil {
		return Failed(err)
	}
	return StatusSent
}

// update is the part of a Bot API Update the bot reads.
type update struct {
	UpdateID      int64          `json:"update_id"`
	Message       *tgMessage     `json:"message"`
	CallbackQuery *callbackQuery `json:"callback_query"`
}

type tgMessage struct {
	Chat struct {
		ID int64 `json:"id"`
	} `json:"chat"`
	Text string `json:"text"`
}

type callbackQuery struct {
	ID      string     `json:"id"`
	Data    string     `json:"data"`
	Message *tgMessage `json:"message"`
	From    struct {
		ID int64 `json:"id"`
	} `json:"from"`
}

// Poll long-polls getUpdates until ctx ends, handling each update in order. The offset is kept
// in the store, so a restart neither repeats nor loses updates. After a failure it waits,
// doubling the wait up to MaxBackoff: a rejected token (401) or a second poller (409) is logged
// once per wait, never in a tight loop.
func (t *Telegram) Poll(ctx context.Context) {
	backoff := orDefault(t.MinBackoff, time.Second)
	pollTimeout := orDefault(t.PollTimeout, 30*time.Second)
	for ctx.Err() == nil {
		offset, err := t.Service.State.TelegramOffset()
		if err != nil {
			t.Logger.Error("telegram offset", "error", err)
		}
		var updates []update
		pctx, cancel := context.WithTimeout(ctx, pollTimeout+10*time.Second)
		err = t.callJSON(pctx, "getUpdates", map[string]any{
			"offset": offset, "timeout": int(pollTimeout / time.Second), "allowed_updates": []string{"message", "callback_query"},
		}, &updates)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			wait := backoff
			var ae *APIError
			switch {
			case errors.As(err, &ae) && ae.Code == http.StatusTooManyRequests && ae.RetryAfter > 0:
				wait = time.Duration(ae.RetryAfter) * time.Second
			case errors.As(err, &ae) && ae.Code == http.StatusUnauthorized:
				t.Logger.Error("telegram rejected the bot token (telegram.bot_token); polling paused", "retry_in", wait)
			case errors.As(err, &ae) && ae.Code == http.StatusConflict:
				t.Logger.Error("another process polls this bot (or a webhook is set); polling paused", "retry_in", wait)
			default:
				t.Logger.Warn("telegram poll failed", "error", err, "retry_in", wait)
			}
			backoff = min(2*backoff, orDefault(t.MaxBackoff, 5*time.Minute))
			if sleep(ctx, wait) != nil {
				return
			}
			continue
		}
		backoff = orDefault(t.MinBackoff, time.Second)
		for _, u := range updates {
			t.handle(ctx, u)
			if err := t.Service.State.SetTelegramOffset(u.UpdateID + 1); err != nil {
				t.Logger.Error("telegram offset", "error", err)
			}
		}
	}
}

// mdEscape escapes legacy Markdown's special characters in a value.
func mdEscape(s string) string {
	return strings.NewReplacer("_", `\_`, "*", `\*`, "`", "\\`", "[", `\[`).Replace(s)
}

const helpText = "Commands:\n" +
	"/start - link this chat to your portal account\n" +
	"/whoami - the account this chat is linked to\n" +
	"/status - your notification scripts, with Run buttons\n" +
	"/run NAME - run a script now\n" +
	"/stop - unlink this chat\n" +
	"/help - this list"

// handle answers one update. Commands may carry the bot's name (/start@MyBot).
func (t *Telegram) handle(ctx context.Context, u update) {
	if cq := u.CallbackQuery; cq != nil {
		t.callback(ctx, cq)
		return
	}
	if u.Message == nil {
		return
	}
	chat := u.Message.Chat.ID
	fields := strings.Fields(u.Message.Text)
	if len(fields) == 0 {
		return
	}
	cmd, _, _ := strings.Cut(fields[0], "@")
	user, err := t.Service.State.TelegramUser(chat)
	if err != nil {
		t.Logger.Error("telegram link lookup", "error", err)
		return
	}
	reply := func(text string, buttons []Button) {
		if err := t.SendText(ctx, chat, text, buttons); err != nil {
			t.Logger.Warn("telegram reply failed", "command", cmd, "error", err)
		}
	}
	needLink := func() bool {
		if user == "" {
			reply("This chat is not linked. Send /start to link it.", nil)
			return false
		}
		return true
	}
	switch cmd {
	case "/start":
		if user != "" {
			reply("You are already linked as *"+mdEscape(user)+"*. Send /stop to unlink.", nil)
			return
		}
		code, err := t.Service.State.NewTelegramCode(chat, t.Service.Now())
		if err != nil {
			t.Logger.Error("telegram code", "error", err)
			reply("Something went wrong; try again later.", nil)
			return
		}
		where := "the portal's Notifications page"
		if t.PortalURL != "" {
			where = t.PortalURL + "/notifications"
		}
		reply(fmt.Sprintf("*%s*\nYour verification code: *%s*\nEnter it on %s. It expires in 10 minutes.",
			mdEscape(t.Service.Config.Instance.Instance.Name), code, mdEscape(where)), nil)
	case "/whoami":
		if user == "" {
			reply("No linked account. Send /start to link this chat.", nil)
			return
		}
		reply("You are linked as *"+mdEscape(user)+"*.", nil)
	case "/status":
		if needLink() {
			t.status(ctx, chat, user, reply)
		}
	case "/run":
		if !needLink() {
			return
		}
		if len(fields) < 2 {
			reply("Usage: /run NAME (see /status for your scripts)", nil)
			return
		}
		t.runNow(ctx, chat, user, fields[1], reply)
	case "/stop":
		if user == "" {
			reply("This chat is not linked.", nil)
			return
		}
		if err := t.Service.State.UnlinkTelegram(user); err != nil {
			t.Logger.Error("telegram unlink", "error", err)
			return
		}
		reply("Unlinked: this chat gets no more notifications. Send /start to link it again.", nil)
	case "/help":
		reply(helpText, nil)
	default:
		reply("Unknown command. Send /help for the list.", nil)
	}
}

func (t *Telegram) status(ctx context.Context, chat int64, user string, reply func(string, []Button)) {
	infos, err := t.Service.List(user)
	if err != nil {
		reply("Failed to read your notification scripts.", nil)
		return
	}
	if len(infos) == 0 {
		reply("You have no notification scripts. Put them in user/notifications/ of your workspace and run `analyst push`.", nil)
		return
	}
	var b strings.Builder
	b.WriteString("*Notifications for " + mdEscape(user) + "*\n")
	var buttons []Button
	now := t.Service.Now()
	for _, in := range infos {
		line := "- `" + in.Name + "`"
		switch {
		case in.State.LastRun.IsZero():
			line += ": never run"
		default:
			line += ": " + Ago(now, in.State.LastRun) + ", " + in.State.LastResult
		}
		if in.State.Muted {
			line += " (muted)"
		}
		b.WriteString(line + "\n")
		buttons = append(buttons, Button{Text: "Run " + in.Name, Data: "run:" + in.Name})
	}
	reply(b.String(), buttons)
}

func (t *Telegram) runNow(ctx context.Context, chat int64, user, name string, reply func(string, []Button)) {
	if _, err := t.Service.RunNow(user, name, chat); err != nil {
		if errors.Is(err, store.ErrNotFound) || ValidName(name) != nil {
			reply("No script named `"+strings.ReplaceAll(name, "`", "'")+"`. Send /status for your scripts.", nil)
			return
		}
		t.Logger.Error("telegram run", "error", err)
		reply("Could not start the script; try again later.", nil)
		return
	}
	reply("Running `"+name+"`...", nil)
}

// callback answers an inline button press ("run:<name>").
func (t *Telegram) callback(ctx context.Context, cq *callbackQuery) {
	id, data, chat := cq.ID, cq.Data, cq.From.ID
	if cq.Message != nil {
		chat = cq.Message.Chat.ID
	}
	answer := func(text string) {
		err := t.withRetry(ctx, func() error {
			return t.callJSON(ctx, "answerCallbackQuery", map[string]any{"callback_query_id": id, "text": text}, nil)
		})
		if err != nil {
			t.Logger.Warn("telegram answerCallbackQuery", "error", err)
		}
	}
	name, ok := strings.CutPrefix(data, "run:")
	if !ok {
		answer("Unknown action")
		return
	}
	user, err := t.Service.State.TelegramUser(chat)
	if err != nil || user == "" {
		answer("Account not linked")
		return
	}
	answer("Running " + name + "...")
	t.runNow(ctx, chat, user, name, func(text string, b []Button) {
		if err := t.SendText(ctx, chat, text, b); err != nil {
			t.Logger.Warn("telegram reply failed", "error", err)
		}
	})
}

// Welcome tells a freshly linked chat who it belongs to.
func (t *Telegram) Welcome(ctx context.Context, chat int64, user string) error {
	return t.SendText(ctx, chat, "Linked to *"+mdEscape(user)+"*. Your notifications arrive here. Send /help for commands.", nil)
}

// Ago formats elapsed time as the original did: 45s, 5m, 3h, 2d followed by " ago".
func Ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}
