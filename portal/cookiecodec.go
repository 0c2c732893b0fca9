package portal

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/gorilla/securecookie"
)

// cookieSerializer writes the portal cookie's values as JSON. The values are few and of known
// types (strings, an int64, flash messages), and gob, securecookie's default, compiles a
// decoder for their types on every request: a fifth of a page's cost. Cookies written in gob
// by earlier versions still decode, so nobody is signed out by an upgrade.
type cookieSerializer struct{}

const flashKey = "_flash" // where gorilla/sessions keeps flashes

type cookieValues struct {
	Strings map[string]string `json:"s,omitempty"`
	Ints    map[string]int64  `json:"i,omitempty"`
	Flashes []flash           `json:"f,omitempty"`
}

func (cookieSerializer) Serialize(src any) ([]byte, error) {
	values, ok := src.(map[any]any)
	if !ok {
		return nil, fmt.Errorf("cookie: cannot serialize %T", src)
	}
	var cv cookieValues
	for k, v := range values {
		key, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("cookie: key %v is not a string", k)
		}
		switch v := v.(type) {
		case string:
			if cv.Strings == nil {
				cv.Strings = map[string]string{}
			}
			cv.Strings[key] = v
		case int64:
			if cv.Ints == nil {
				cv.Ints = map[string]int64{}
			}
			cv.Ints[key] = v
		case []any:
			if key != flashKey {
				return nil, fmt.Errorf("cookie: list under %q", key)
			}
			for _, f := range v {
				fl, ok := f.(flash)
				if !ok {
					return nil, fmt.Errorf("cookie: flash of type %T", f)
				}
				cv.Flashes = append(cv.Flashes, fl)
			}
		default:
			return nil, fmt.Errorf("cookie: value of %q has type %T", key, v)
		}
	}
	return json.Marshal(cv)
}

func (cookieSerializer) Deserialize(src []byte, dst any) error {
	if !bytes.HasPrefix(src, []byte("{")) {
		return securecookie.GobEncoder{}.Deserialize(src, dst)
	}
	values, ok := dst.(*map[any]any)
	if !ok {
		return fmt.Errorf("cookie: cannot deserialize into %T", dst)
	}
	var cv cookieValues
	if err := json.Unmarshal(src, &cv); err != nil {
		return err
	}
	m := make(map[any]any, len(cv.Strings)+len(cv.Ints)+1)
	for k, v := range cv.Strings {
		m[k] = v
	}
	for k, v := range cv.Ints {
		m[k] = v
	}
	if len(cv.Flashes) > 0 {
		fl := make([]any, len(cv.Flashes))
		for i, f := range cv.Flashes {
			fl[i] = f
		}
		m[flashKey] = fl
	}
	*values = m
	return nil
}
