package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Notification state: script states, run requests, the inbox, Telegram and desktop links and
// the desktop offline queue. One bbolt transaction per change, so the portal, the bot and the
// runner never race on read-modify-write (the original's JSON files did).
var (
	bucketNotifyScripts  = []byte("notify.scripts")    // user \x00 script -> ScriptState
	bucketNotifyRequests = []byte("notify.requests")   // request id -> ScriptRequestState
	bucketNotifyInbox    = []byte("notify.inbox")      // user \x00 seq(8) -> Notification
	bucketNotifyInboxIDs = []byte("notify.inbox.ids")  // notification id -> inbox key
	bucketTelegramLinks  = []byte("notify.tg.links")   // user -> TelegramLink
	bucketTelegramChats  = []byte("notify.tg.chats")   // chat id -> user
	bucketTelegramCodes  = []byte("notify.tg.codes")   // code -> pendingCode
	bucketTelegramTries  = []byte("notify.tg.tries")   // user -> verifyTries
	bucketTelegramMeta   = []byte("notify.tg.meta")    // "offset" -> next update id
	bucketDesktopLinks   = []byte("notify.desk.links") // user -> DesktopLink
	bucketDesktopQueue   = []byte("notify.desk.queue") // user \x00 seq(8) -> notification id
)

// Errors of the linking flows.
var (
	ErrBadCode         = errors.New("invalid or expired verification code")
	ErrTooManyAttempts = errors.New("too many wrong codes")
)

// Link codes: 6 digits, valid 10 minutes, single use; a user may enter 5 wrong codes per 10 minutes.
const (
	TelegramCodeTTL      = 10 * time.Minute
	TelegramCodeAttempts = 5
)

// ScriptState is what the server knows of one analyst's script besides its file.
type ScriptState struct {
	User         string    `json:"user"`
	Name         string    `json:"name"`
	Schedule     string    `json:"schedule,omitempty"` // set in the portal; overrides the script's header
	ScheduleSet  bool      `json:"schedule_set,omitempty"`
	Muted        bool      `json:"muted,omitempty"`
	LastRun      time.Time `json:"last_run,omitzero"`
	LastTrigger  string    `json:"last_trigger,omitempty"`
	LastResult   string    `json:"last_result,omitempty"` // notified, no alert, cooldown, muted, error, not delivered
	LastError    string    `json:"last_error,omitempty"`
	LastDuration float64   `json:"last_duration_seconds,omitempty"`
	LastSent     time.Time `json:"last_sent,omitzero"` // the cooldown counts from here
}

// ScriptRequestState records a script run request, so a redelivered request is not run twice.
type ScriptRequestState struct {
	State   string    `json:"state"` // running | done
	Started time.Time `json:"started"`
	Done    time.Time `json:"done,omitzero"`
}

// Notification is one alert in a user's inbox with the status of each channel.
type Notification struct {
	ID       string            `json:"id"`
	User     string            `json:"user"`
	Script   string            `json:"script"`
	Trigger  string            `json:"trigger,omitempty"`
	Title    string            `json:"title,omitempty"`
	Message  string            `json:"message,omitempty"`
	Image    string            `json:"image,omitempty"` // file name in the image folder
	Time     time.Time         `json:"time"`
	Channels map[string]string `json:"channels"` // channel -> status
}

// TelegramLink ties a portal user to a Telegram chat.
type TelegramLink struct {
	ChatID   int64     `json:"chat_id"`
	LinkedAt time.Time `json:"linked_at"`
}

// DesktopLink is a user's desktop app link; tokens name its ID, so unlinking revokes them.
type DesktopLink struct {
	ID       string    `json:"id"`
	LinkedAt time.Time `json:"linked_at"`
}

type pendingCode struct {
	ChatID  int64     `json:"chat_id"`
	Created time.Time `json:"created"`
}

type verifyTries struct {
	Count int       `json:"count"`
	First time.Time `json:"first"`
}

// Notifications keeps the notification state in the instance's bbolt file.
type Notifications struct{ db *bolt.DB }

// NewNotifications opens the notification records.
func NewNotifications(db *bolt.DB) (*Notifications, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketNotifyScripts, bucketNotifyRequests, bucketNotifyInbox, bucketNotifyInboxIDs,
			bucketTelegramLinks, bucketTelegramChats, bucketTelegramCodes, bucketTelegramTries, bucketTelegramMeta,
			bucketDesktopLinks, bucketDesktopQueue} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	return &Notifications{db: db}, err
}

func userKey(user, name string) []byte { return []byte(user + "\x00" + name) }

func getJSON(tx *bolt.Tx, bucket []byte, key []byte, v any) (bool, error) {
	raw := tx.Bucket(bucket).Get(key)
	if raw == nil {
		return false, nil
	}
	return true, json.Unmarshal(raw, v)
}

func putJSONKey(tx *bolt.Tx, bucket, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put(key, b)
}

// Script returns a script's state (a zero state with user and name when none is recorded).
func (n *Notifications) Script(user, name string) (ScriptState, error) {
	st := ScriptState{User: user, Name: name}
	err := n.db.View(func(tx *bolt.Tx) error {
		_, err := getJSON(tx, bucketNotifyScripts, userKey(user, name), &st)
		return err
	})
	return st, err
}

// Scripts returns the recorded states of a user's scripts by name.
func (n *Notifications) Scripts(user string) (map[string]ScriptState, error) {
	out := map[string]ScriptState{}
	prefix := []byte(user + "\x00")
	err := n.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketNotifyScripts).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var st ScriptState
			if err := json.Unmarshal(v, &st); err != nil {
				return err
			}
			out[st.Name] = st
		}
		return nil
	})
	return out, err
}

// UpdateScript changes a script's state in one transaction.
func (n *Notifications) UpdateScript(user, name string, fn func(*ScriptState)) (ScriptState, error) {
	st := ScriptState{User: user, Name: name}
	err := n.db.Update(func(tx *bolt.Tx) error {
		if _, err := getJSON(tx, bucketNotifyScripts, userKey(user, name), &st); err != nil {
			return err
		}
		fn(&st)
		return putJSONKey(tx, bucketNotifyScripts, userKey(user, name), &st)
	})
	return st, err
}

// DeleteScript forgets a script's state.
func (n *Notifications) DeleteScript(user, name string) error {
	return n.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketNotifyScripts).Delete(userKey(user, name)) })
}

// BeginRequest marks a run request as running and reports whether it should run: false when
// it finished before (a redelivered message). A request that started but never finished (the
// server stopped mid-run) runs again.
func (n *Notifications) BeginRequest(id string, now time.Time) (bool, error) {
	run := false
	err := n.db.Update(func(tx *bolt.Tx) error {
		var st ScriptRequestState
		if _, err := getJSON(tx, bucketNotifyRequests, []byte(id), &st); err != nil {
			return err
		}
		if st.State == "done" {
			return nil
		}
		run = true
		return putJSONKey(tx, bucketNotifyRequests, []byte(id), ScriptRequestState{State: "running", Started: now})
	})
	return run, err
}

// FinishRequest marks a run request as done.
func (n *Notifications) FinishRequest(id string, now time.Time) error {
	return n.db.Update(func(tx *bolt.Tx) error {
		var st ScriptRequestState
		if _, err := getJSON(tx, bucketNotifyRequests, []byte(id), &st); err != nil {
			return err
		}
		st.State, st.Done = "done", now
		return putJSONKey(tx, bucketNotifyRequests, []byte(id), st)
	})
}

// PruneRequests forgets finished requests older than before; it returns how many.
func (n *Notifications) PruneRequests(before time.Time) (int, error) {
	count := 0
	err := n.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketNotifyRequests)
		var doomed [][]byte
		b.ForEach(func(k, v []byte) error {
			var st ScriptRequestState
			if json.Unmarshal(v, &st) == nil && st.State == "done" && st.Done.Before(before) {
				doomed = append(doomed, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		count = len(doomed)
		return nil
	})
	return count, err
}

// AddNotification stores a notification in its user's inbox; a notification with the same id
// stored before is returned instead (a redelivered run keeps its channel statuses).
func (n *Notifications) AddNotification(note Notification) (Notification, error) {
	err := n.db.Update(func(tx *bolt.Tx) error {
		if key := tx.Bucket(bucketNotifyInboxIDs).Get([]byte(note.ID)); key != nil {
			_, err := getJSON(tx, bucketNotifyInbox, key, &note)
			return err
		}
		seq, err := tx.Bucket(bucketNotifyInbox).NextSequence()
		if err != nil {
			return err
		}
		key := seqKey(note.User, seq)
		if note.Channels == nil {
			note.Channels = map[string]string{}
		}
		if err := tx.Bucket(bucketNotifyInboxIDs).Put([]byte(note.ID), key); err != nil {
			return err
		}
		return putJSONKey(tx, bucketNotifyInbox, key, &note)
	})
	return note, err
}

func seqKey(user string, seq uint64) []byte {
	key := make([]byte, 0, len(user)+9)
	key = append(append(key, user...), 0)
	return binary.BigEndian.AppendUint64(key, seq)
}

// Notification returns one notification by id.
func (n *Notifications) Notification(id string) (Notification, error) {
	var note Notification
	err := n.db.View(func(tx *bolt.Tx) error {
		key := tx.Bucket(bucketNotifyInboxIDs).Get([]byte(id))
		if key == nil {
			return fmt.Errorf("notification %s: %w", id, ErrNotFound)
		}
		_, err := getJSON(tx, bucketNotifyInbox, key, &note)
		return err
	})
	return note, err
}

// SetChannelStatus records what a channel did with a notification.
func (n *Notifications) SetChannelStatus(id, channel, status string) error {
	return n.db.Update(func(tx *bolt.Tx) error {
		key := tx.Bucket(bucketNotifyInboxIDs).Get([]byte(id))
		if key == nil {
			return fmt.Errorf("notification %s: %w", id, ErrNotFound)
		}
		var note Notification
		if _, err := getJSON(tx, bucketNotifyInbox, key, &note); err != nil {
			return err
		}
		if note.Channels == nil {
			note.Channels = map[string]string{}
		}
		note.Channels[channel] = status
		return putJSONKey(tx, bucketNotifyInbox, key, &note)
	})
}

// Inbox returns a user's newest notifications first, at most limit.
func (n *Notifications) Inbox(user string, limit int) ([]Notification, error) {
	out := []Notification{}
	prefix := []byte(user + "\x00")
	err := n.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketNotifyInbox).Cursor()
		// Seek past the user's last key, then walk back.
		k, _ := c.Seek(append(append([]byte(nil), prefix...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
		var v []byte
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, v = c.Prev() {
			var note Notification
			if err := json.Unmarshal(v, &note); err != nil {
				return err
			}
			out = append(out, note)
		}
		return nil
	})
	return out, err
}

// NewTelegramCode makes a fresh 6-digit code for a chat (from a cryptographic RNG, unique among
// live codes) and drops the chat's older codes.
func (n *Notifications) NewTelegramCode(chatID int64, now time.Time) (string, error) {
	var code string
	err := n.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTelegramCodes)
		var doomed [][]byte
		b.ForEach(func(k, v []byte) error {
			var p pendingCode
			if json.Unmarshal(v, &p) != nil || p.ChatID == chatID || now.Sub(p.Created) > TelegramCodeTTL {
				doomed = append(doomed, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		for {
			v, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
			if err != nil {
				return err
			}
			code = fmt.Sprintf("%06d", v.Int64())
			if b.Get([]byte(code)) == nil {
				break
			}
		}
		return putJSONKey(tx, bucketTelegramCodes, []byte(code), pendingCode{ChatID: chatID, Created: now})
	})
	return code, err
}

// VerifyTelegramCode links user to the chat that asked for code. The code works once; a user
// who entered TelegramCodeAttempts wrong codes within TelegramCodeTTL gets ErrTooManyAttempts
// until the window has passed. A chat linked to another user moves to this one.
func (n *Notifications) VerifyTelegramCode(user, code string, now time.Time) (TelegramLink, error) {
	var link TelegramLink
	var result error
	err := n.db.Update(func(tx *bolt.Tx) error {
		var tries verifyTries
		if _, err := getJSON(tx, bucketTelegramTries, []byte(user), &tries); err != nil {
			return err
		}
		if now.Sub(tries.First) > TelegramCodeTTL {
			tries = verifyTries{}
		}
		if tries.Count >= TelegramCodeAttempts {
			result = ErrTooManyAttempts
			return nil
		}
		var p pendingCode
		found, err := getJSON(tx, bucketTelegramCodes, []byte(code), &p)
		if err != nil {
			return err
		}
		if !found || now.Sub(p.Created) > TelegramCodeTTL {
			if tries.Count == 0 {
				tries.First = now
			}
			tries.Count++
			result = ErrBadCode
			return putJSONKey(tx, bucketTelegramTries, []byte(user), tries)
		}
		if err := tx.Bucket(bucketTelegramCodes).Delete([]byte(code)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketTelegramTries).Delete([]byte(user)); err != nil {
			return err
		}
		if err := unlinkTelegram(tx, user); err != nil {
			return err
		}
		chat := []byte(fmt.Sprint(p.ChatID))
		if prev := tx.Bucket(bucketTelegramChats).Get(chat); prev != nil {
			if err := tx.Bucket(bucketTelegramLinks).Delete(prev); err != nil {
				return err
			}
		}
		link = TelegramLink{ChatID: p.ChatID, LinkedAt: now.UTC()}
		if err := tx.Bucket(bucketTelegramChats).Put(chat, []byte(user)); err != nil {
			return err
		}
		return putJSONKey(tx, bucketTelegramLinks, []byte(user), link)
	})
	if err != nil {
		return link, err
	}
	return link, result
}

func unlinkTelegram(tx *bolt.Tx, user string) error {
	var old TelegramLink
	found, err := getJSON(tx, bucketTelegramLinks, []byte(user), &old)
	if err != nil || !found {
		return err
	}
	if err := tx.Bucket(bucketTelegramChats).Delete([]byte(fmt.Sprint(old.ChatID))); err != nil {
		return err
	}
	return tx.Bucket(bucketTelegramLinks).Delete([]byte(user))
}

// TelegramLink returns a user's link; ok is false when the user has none.
func (n *Notifications) TelegramLink(user string) (link TelegramLink, ok bool, err error) {
	err = n.db.View(func(tx *bolt.Tx) error {
		ok, err = getJSON(tx, bucketTelegramLinks, []byte(user), &link)
		return err
	})
	return link, ok, err
}

// TelegramUser returns the user linked to a chat ("" when none).
func (n *Notifications) TelegramUser(chatID int64) (string, error) {
	var user string
	err := n.db.View(func(tx *bolt.Tx) error {
		user = string(tx.Bucket(bucketTelegramChats).Get([]byte(fmt.Sprint(chatID))))
		return nil
	})
	return user, err
}

// UnlinkTelegram removes a user's link; ErrNotFound when there is none.
func (n *Notifications) UnlinkTelegram(user string) error {
	return n.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketTelegramLinks).Get([]byte(user)) == nil {
			return fmt.Errorf("telegram link of %s: %w", user, ErrNotFound)
		}
		return unlinkTelegram(tx, user)
	})
}

// TelegramOffset is the next update id the bot asks for (0 before the first update).
func (n *Notifications) TelegramOffset() (int64, error) {
	var off int64
	err := n.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketTelegramMeta).Get([]byte("offset")); len(v) == 8 {
			off = int64(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	return off, err
}

// SetTelegramOffset records the next update id, so a restart does not handle updates again.
func (n *Notifications) SetTelegramOffset(off int64) error {
	return n.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTelegramMeta).Put([]byte("offset"), binary.BigEndian.AppendUint64(nil, uint64(off)))
	})
}

// LinkDesktop returns the user's desktop link, creating it when missing.
func (n *Notifications) LinkDesktop(user string, now time.Time) (DesktopLink, error) {
	var link DesktopLink
	err := n.db.Update(func(tx *bolt.Tx) error {
		found, err := getJSON(tx, bucketDesktopLinks, []byte(user), &link)
		if err != nil || found {
			return err
		}
		link = DesktopLink{ID: randomID(), LinkedAt: now.UTC()}
		return putJSONKey(tx, bucketDesktopLinks, []byte(user), link)
	})
	return link, err
}

// DesktopLink returns the user's desktop link; ok is false when there is none.
func (n *Notifications) DesktopLink(user string) (link DesktopLink, ok bool, err error) {
	err = n.db.View(func(tx *bolt.Tx) error {
		ok, err = getJSON(tx, bucketDesktopLinks, []byte(user), &link)
		return err
	})
	return link, ok, err
}

// UnlinkDesktop removes the link (revoking every token issued under it) and the offline queue;
// ErrNotFound when there is no link.
func (n *Notifications) UnlinkDesktop(user string) error {
	return n.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketDesktopLinks).Get([]byte(user)) == nil {
			return fmt.Errorf("desktop link of %s: %w", user, ErrNotFound)
		}
		if err := tx.Bucket(bucketDesktopLinks).Delete([]byte(user)); err != nil {
			return err
		}
		return deletePrefix(tx.Bucket(bucketDesktopQueue), []byte(user+"\x00"), nil)
	})
}

// QueueDesktop adds a notification to the user's offline queue unless it is there already.
func (n *Notifications) QueueDesktop(user, id string) error {
	return n.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDesktopQueue)
		prefix := []byte(user + "\x00")
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if string(v) == id {
				return nil
			}
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		return b.Put(seqKey(user, seq), []byte(id))
	})
}

// DesktopQueue returns the ids waiting for the user's acknowledgement, oldest first.
func (n *Notifications) DesktopQueue(user string) ([]string, error) {
	var ids []string
	prefix := []byte(user + "\x00")
	err := n.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDesktopQueue).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			ids = append(ids, string(v))
		}
		return nil
	})
	return ids, err
}

// AckDesktop removes an acknowledged notification from the user's queue; false when it was not queued.
func (n *Notifications) AckDesktop(user, id string) (bool, error) {
	removed := false
	err := n.db.Update(func(tx *bolt.Tx) error {
		return deletePrefix(tx.Bucket(bucketDesktopQueue), []byte(user+"\x00"), func(v []byte) bool {
			if string(v) == id {
				removed = true
				return true
			}
			return false
		})
	})
	return removed, err
}

// deletePrefix deletes the keys with prefix whose value match accepts (all when match is nil).
func deletePrefix(b *bolt.Bucket, prefix []byte, match func(v []byte) bool) error {
	var doomed [][]byte
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if match == nil || match(v) {
			doomed = append(doomed, append([]byte(nil), k...))
		}
	}
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// ForgetNotificationUser removes everything kept for a user who was removed.
func (n *Notifications) ForgetNotificationUser(user string) error {
	return n.db.Update(func(tx *bolt.Tx) error {
		if err := unlinkTelegram(tx, user); err != nil {
			return err
		}
		tx.Bucket(bucketDesktopLinks).Delete([]byte(user))
		tx.Bucket(bucketTelegramTries).Delete([]byte(user))
		prefix := []byte(user + "\x00")
		for _, b := range [][]byte{bucketDesktopQueue, bucketNotifyScripts} {
			if err := deletePrefix(tx.Bucket(b), prefix, nil); err != nil {
				return err
			}
		}
		var ids []string
		c := tx.Bucket(bucketNotifyInbox).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var note Notification
			if json.Unmarshal(v, &note) == nil {
				ids = append(ids, note.ID)
			}
		}
		for _, id := range ids {
			tx.Bucket(bucketNotifyInboxIDs).Delete([]byte(id))
		}
		return deletePrefix(tx.Bucket(bucketNotifyInbox), prefix, nil)
	})
}

func randomID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}
