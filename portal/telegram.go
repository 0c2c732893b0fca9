package portal

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/ai-data-analyst/analyst/store"
)

// telegramRoutes: linking a Telegram chat with the code the bot gave it (/start), unlinking,
// and the link's status.
func (s *server) telegramRoutes(api *mux.Router) {
	api.Handle("/telegram/verify", signedIn(s.telegramVerify)).Methods(http.MethodPost)
	api.Handle("/telegram/unlink", signedIn(s.telegramUnlink)).Methods(http.MethodPost)
	api.Handle("/telegram/status", signedIn(s.telegramStatus)).Methods(http.MethodGet)
}

func (s *server) telegramVerify(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Code string `json:"code"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, `body must be {"code": "123456"}`)
		return
	}
	link, status, msg := s.linkTelegram(r.Context(), UserFrom(r.Context()).Email, req.Code)
	if status != http.StatusOK {
		writeError(w, status, msg)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"linked": true, "linked_at": link.LinkedAt})
}

// linkTelegram verifies a code and, once linked, greets the chat (in the background: the bot
// may be slow or down, the link stands either way).
func (s *server) linkTelegram(ctx context.Context, user, code string) (store.TelegramLink, int, string) {
	link, err := s.Notify.State.VerifyTelegramCode(user, strings.TrimSpace(code), time.Now())
	switch {
	case errors.Is(err, store.ErrBadCode):
		return link, http.StatusBadRequest, "Invalid or expired verification code."
	case errors.Is(err, store.ErrTooManyAttempts):
		return link, http.StatusTooManyRequests, "Too many wrong codes; wait 10 minutes and send /start to the bot again."
	case err != nil:
		s.Logger.Error("telegram verify", "error", err)
		return link, http.StatusInternalServerError, "internal error"
	}
	if tg := s.Notify.Telegram; tg != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := tg.Welcome(ctx, link.ChatID, user); err != nil {
				s.Logger.Warn("telegram welcome message", "error", err)
			}
		}()
	}
	return link, http.StatusOK, ""
}

func (s *server) telegramUnlink(w http.ResponseWriter, r *http.Request) {
	err := s.Notify.State.UnlinkTelegram(UserFrom(r.Context()).Email)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusBadRequest, "Telegram is not linked.")
		return
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"linked": false})
}

func (s *server) telegramStatus(w http.ResponseWriter, r *http.Request) {
	link, ok, err := s.Notify.State.TelegramLink(UserFrom(r.Context()).Email)
	if err != nil {
		s.fail(w, err)
		return
	}
	out := map[string]any{"linked": ok, "linked_at": nil, "bot_username": s.Config.Instance.Telegram.BotUsername,
		"configured": s.Notify.Telegram != nil}
	if ok {
		out["linked_at"] = link.LinkedAt
	}
	writeJSON(w, http.StatusOK, out)
}
