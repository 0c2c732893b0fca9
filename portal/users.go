package portal

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/ai-data-analyst/analyst/store"
)

// Admin automation for users and their API tokens.
func (s *server) userRoutes(api *mux.Router) {
	api.Handle("/admin/users", admin(s.listUsers)).Methods(http.MethodGet)
	api.Handle("/admin/users", admin(s.addUser)).Methods(http.MethodPost)
	api.Handle("/admin/users/{email}", admin(s.removeUser)).Methods(http.MethodDelete)
	api.Handle("/admin/users/{email}/tokens", admin(s.createToken)).Methods(http.MethodPost)
}

func (s *server) listUsers(w http.ResponseWriter, r *http.Request) {
	users, err := s.Users.List()
	if err != nil {
		s.fail(w, err)
		return
	}
	if users == nil {
		users = []*store.User{}
	}
	writeJSON(w, http.StatusOK, users)
}

func (s *server) addUser(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email string `json:"email"`
		Role  string `json:"role"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, `body must be {"email": "...", "role": "analyst|privileged|admin"}`)
		return
	}
	if req.Role == "" {
		req.Role = store.RoleAnalyst
	}
	user, err := s.Users.Add(req.Email, req.Role)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, user)
}

func (s *server) removeUser(w http.ResponseWriter, r *http.Request) {
	err := s.Users.Remove(mux.Vars(r)["email"])
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such user")
		return
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) createToken(w http.ResponseWriter, r *http.Request) {
	plain, tok, err := s.Users.CreateToken(mux.Vars(r)["email"], "api")
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such user")
		return
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"token": plain, "id": tok.ID})
}
