package main

import (
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"
)

// checkUTF8 refuses a request body holding a string that is not valid
// UTF-8: encoding/json would send each bad byte as U+FFFD, so the node
// would create "\ufffd@example.com" while the CLI confirmed the bytes
// typed, and a password would be set to something nobody can type. A
// password's value is not repeated in the error.
func checkUTF8(v any) error {
	name, bad := invalidUTF8(reflect.ValueOf(v), "")
	if !bad {
		return nil
	}
	what := "a value"
	if name != "" {
		what = name
	}
	return fmt.Errorf("invalid input: %s is not valid UTF-8 (give it in UTF-8; a domain in its xn-- form)", what)
}

// invalidUTF8 finds a string in v that is not valid UTF-8 and returns its
// JSON field name (with its value, unless the name says password).
func invalidUTF8(v reflect.Value, field string) (string, bool) {
	switch v.Kind() {
	case reflect.String:
		if utf8.ValidString(v.String()) {
			return "", false
		}
		if field == "" || strings.Contains(field, "password") {
			return field, true
		}
		return fmt.Sprintf("%s %q", field, v.String()), true
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return "", false
		}
		return invalidUTF8(v.Elem(), field)
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if name, bad := invalidUTF8(v.Index(i), field); bad {
				return name, true
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			key := field
			if it.Key().Kind() == reflect.String {
				key = it.Key().String()
			}
			if name, bad := invalidUTF8(it.Value(), key); bad {
				return name, true
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			key, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if key == "" || key == "-" {
				key = field
			}
			if name, bad := invalidUTF8(v.Field(i), key); bad {
				return name, true
			}
		}
	}
	return "", false
}
