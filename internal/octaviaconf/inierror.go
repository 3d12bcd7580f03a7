package octaviaconf

import (
	"errors"
	"strings"

	"gopkg.in/ini.v1"
)

// INIError rewrites an error of the INI parser so that it no longer quotes
// the offending text, which may hold a secret: a value opened with """ or
// a backquote and never closed runs to the end of the file, and the
// parser's error quotes all of it. Other errors (a file that cannot be
// read) are returned unchanged.
func INIError(err error) error {
	var noDelimiter ini.ErrDelimiterNotFound
	var noKey ini.ErrEmptyKeyName
	msg := err.Error()
	switch {
	case errors.As(err, &noDelimiter):
		return errors.New(`a line is neither a [section], an "option = value" nor an indented continuation (its text is not shown: it may hold a secret)`)
	case errors.As(err, &noKey):
		return errors.New(`a line has no option name before its "=" (its text is not shown: it may hold a secret)`)
	case strings.HasPrefix(msg, "unclosed section"):
		return errors.New(`a section header has no closing "]"`)
	case strings.HasPrefix(msg, "missing closing key quote"):
		return errors.New("a value that starts with \"\"\" or ` (or an option name that starts with a quote) is never closed " +
			"(its text is not shown: it may hold a secret)")
	}
	return err
}
