package octaviaconf

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/ini.v1"

	"github.com/octavia-vpp/health/internal/mysqlconf"
)

// entry is one option's raw value and the file that set it last.
type entry struct {
	value string
	file  string
}

// sources merges the files: a later file's value replaces an earlier one.
type sources struct {
	sections map[string]map[string]entry
	order    map[string][]string // option names per section, first-seen order
}

// readFiles reads every file, even after one fails, so that each file
// that cannot be read or parsed is reported; the errors are *FileError.
func readFiles(files []string) (*sources, error) {
	s := &sources{sections: map[string]map[string]entry{}, order: map[string][]string{}}
	var errs []error
	for _, name := range files {
		f, err := ini.LoadSources(ini.LoadOptions{
			// oslo.config continues a value on indented lines and has no
			// inline comments: "a = b # c" is the value "b # c".
			AllowPythonMultilineValues: true,
			IgnoreInlineComment:        true,
		}, name)
		if err != nil {
			errs = append(errs, &FileError{File: name, Err: INIError(err)})
			continue
		}
		for _, sec := range f.Sections() {
			m := s.sections[sec.Name()]
			if m == nil {
				m = map[string]entry{}
				s.sections[sec.Name()] = m
			}
			for _, k := range sec.Keys() {
				if _, seen := m[k.Name()]; !seen {
					s.order[sec.Name()] = append(s.order[sec.Name()], k.Name())
				}
				// Value, not String: ini's own %(name)s interpolation is
				// not oslo's.
				m[k.Name()] = entry{value: joinContinuation(k.Value()), file: name}
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// joinContinuation strips the indentation of continuation lines, which
// oslo does not keep in the value.
func joinContinuation(v string) string {
	if !strings.Contains(v, "\n") {
		return v
	}
	lines := strings.Split(v, "\n")
	for i := 1; i < len(lines); i++ {
		lines[i] = strings.TrimLeft(lines[i], " \t")
	}
	return strings.Join(lines, "\n")
}

func (s *sources) get(section, option string) (entry, bool) {
	e, ok := s.sections[section][option]
	return e, ok
}

func (s *sources) keys(section string) []string { return s.order[section] }

func (s *sources) fileOf(section, option string) string {
	return s.sections[section][option].file
}

// reader converts raw values into typed fields, collecting every bad
// value (an option in error keeps its default). Each method returns
// whether the option was set in a file.
type reader struct {
	src  *sources
	errs []error
}

func (r *reader) fileOf(section, option string) string { return r.src.fileOf(section, option) }

func (r *reader) fail(e entry, section, option, shown, reason string) {
	shown, reason = r.src.redact(section, option, shown, reason)
	r.errs = append(r.errs, &OptionError{File: e.file, Section: section, Option: option, Value: shown, Reason: reason})
}

// raw returns the interpolated value of an option, trimmed of the
// surrounding whitespace oslo strips.
func (r *reader) raw(section, option string, secret bool) (string, entry, bool) {
	e, ok := r.src.get(section, option)
	if !ok {
		return "", e, false
	}
	v, err := interpolate(r.src, section, e.value, 0)
	if err != nil {
		shown, reason := e.value, err.Error()
		if secret {
			// The reason quotes the reference, which is part of the secret.
			shown, reason = hiddenValue, `"$" substitution failed (details hidden: secret option; write "$$" for a literal "$")`
		}
		r.fail(e, section, option, shown, reason)
		return "", e, false
	}
	return strings.TrimSpace(v), e, true
}

func (r *reader) str(section, option string, dst *string) bool {
	v, _, ok := r.raw(section, option, false)
	if ok {
		*dst = v
	}
	return ok
}

func (r *reader) secret(section, option string, dst *string) bool {
	v, _, ok := r.raw(section, option, true)
	if ok {
		*dst = v
	}
	return ok
}

func (r *reader) boolean(section, option string, dst *bool) bool {
	v, e, ok := r.raw(section, option, false)
	if !ok {
		return false
	}
	switch strings.ToLower(v) {
	case "true", "yes", "on", "1":
		*dst = true
	case "false", "no", "off", "0":
		*dst = false
	default:
		r.fail(e, section, option, v, "not a boolean (want true/false, yes/no, on/off or 1/0)")
		return false
	}
	return true
}

// integer parses a whole number no smaller than lo. An empty value counts
// as unset, as oslo reads it as None.
func (r *reader) integer(section, option string, lo int, dst *int) bool {
	v, e, ok := r.raw(section, option, false)
	if !ok || v == "" {
		return false
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.fail(e, section, option, v, "not an integer")
		return false
	}
	if n < lo {
		r.fail(e, section, option, v, fmt.Sprintf("must be at least %d", lo))
		return false
	}
	*dst = n
	return true
}

func (r *reader) seconds(section, option string, lo int, dst *time.Duration) bool {
	var n int
	if !r.integer(section, option, lo, &n) {
		return false
	}
	*dst = time.Duration(n) * time.Second
	return true
}

func (r *reader) port(section, option string, dst *int) bool {
	v, e, ok := r.raw(section, option, false)
	if !ok || v == "" {
		return false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 65535 {
		r.fail(e, section, option, v, "not a port number (0-65535)")
		return false
	}
	*dst = n
	return true
}

func (r *reader) ip(section, option string, dst *netip.Addr) bool {
	v, e, ok := r.raw(section, option, false)
	if !ok || v == "" {
		return false
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		r.fail(e, section, option, v, "not an IPv4 or IPv6 address")
		return false
	}
	*dst = a
	return true
}

// list splits an oslo ListOpt: comma-separated, spaces around items
// ignored, an item may be quoted to hold a comma, empty items dropped.
func (r *reader) list(section, option string, dst *[]string) bool {
	return r.listOf(section, option, false, dst)
}

// secretList is list for an option that holds keys: errors never show it.
func (r *reader) secretList(section, option string, dst *[]string) bool {
	return r.listOf(section, option, true, dst)
}

func (r *reader) listOf(section, option string, secret bool, dst *[]string) bool {
	v, e, ok := r.raw(section, option, secret)
	if !ok {
		return false
	}
	items, err := splitList(v)
	if err != nil {
		shown := v
		if secret {
			shown = hiddenValue
		}
		r.fail(e, section, option, shown, err.Error())
		return false
	}
	*dst = items
	return true
}

func splitList(v string) ([]string, error) {
	items := []string{}
	var cur strings.Builder
	var quote rune
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			items = append(items, s)
		}
		cur.Reset()
	}
	for _, c := range v {
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(c)
		case (c == '"' || c == '\'') && strings.TrimSpace(cur.String()) == "":
			cur.Reset()
			quote = c
		case c == ',':
			flush()
		default:
			cur.WriteRune(c)
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote in list")
	}
	flush()
	return items, nil
}

func (r *reader) connection(db *Database) bool {
	e, ok := r.src.get("database", "connection")
	if !ok {
		return false
	}
	v, _, ok := r.raw("database", "connection", true)
	if !ok {
		return false
	}
	if v == "" {
		return false
	}
	if mysqlconf.IsMySQLURL(v) {
		cfg, err := mysqlconf.ParseURL(v)
		if err != nil {
			r.fail(e, "database", "connection", RedactURL(v), err.Error())
			return false
		}
		db.Connection, db.MySQL = v, cfg
		return true
	}
	u, err := postgresURL(v)
	if err != nil {
		r.fail(e, "database", "connection", RedactURL(v), err.Error())
		return false
	}
	db.Connection = u
	return true
}

// postgresURL turns an SQLAlchemy database URL into one pgx accepts.
func postgresURL(v string) (string, error) {
	scheme, rest, ok := strings.Cut(v, "://")
	if !ok {
		return "", errors.New("not a database URL (want postgresql://user:password@host/octavia or mysql+pymysql://user:password@host/octavia)")
	}
	dialect, driver, _ := strings.Cut(strings.ToLower(scheme), "+")
	switch dialect {
	case "postgresql", "postgres":
	default:
		return "", fmt.Errorf("scheme %q is not supported; use postgresql://user:password@host/octavia or mysql+pymysql://user:password@host/octavia", scheme)
	}
	switch driver {
	case "", "psycopg2", "psycopg", "pg8000":
	default:
		return "", fmt.Errorf("scheme %q names an SQLAlchemy driver that is not supported (want psycopg2, psycopg or pg8000)", scheme)
	}
	out := "postgresql://" + rest
	if _, err := url.Parse(out); err != nil {
		// url.Parse's message would echo the password.
		return "", errors.New("malformed URL (percent-encode special characters in the user name and password)")
	}
	return out, nil
}

// userinfoPassword runs to the last "@": a password written without
// percent-encoding may hold "@" or "/" itself, so a URL with a query or
// path containing "@" loses more than the password, never less.
var userinfoPassword = regexp.MustCompile(`(://[^:/@]*):.*@`)

// RedactURL hides the password of a database URL so that it can be logged.
func RedactURL(v string) string {
	return userinfoPassword.ReplaceAllString(v, "$1:***@")
}

var optionName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`)

// maxSubstitutions bounds the references one value may expand, all levels
// together: options that each name the next several times would otherwise
// expand exponentially.
const maxSubstitutions = 1000

// interpolate applies oslo.config's substitution: "$$" is "$", and "$name"
// or "${name}" is the value of option name in the same section, else in
// [DEFAULT]; "${group.name}" names the section explicitly.
func interpolate(src *sources, section, v string, depth int) (string, error) {
	budget := maxSubstitutions
	return expand(src, section, v, depth, &budget)
}

func expand(src *sources, section, v string, depth int, budget *int) (string, error) {
	if !strings.Contains(v, "$") {
		return v, nil
	}
	if depth > 10 {
		return "", errors.New("substitution nested too deeply (a reference loop?)")
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '$' {
			b.WriteByte(v[i])
			continue
		}
		rest := v[i+1:]
		var ref string
		switch {
		case strings.HasPrefix(rest, "$"):
			b.WriteByte('$')
			i++
			continue
		case strings.HasPrefix(rest, "{"):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return "", errors.New(`unterminated "${" (write "$$" for a literal "$")`)
			}
			ref = rest[1:end]
			i += end + 1
		default:
			ref = optionName.FindString(rest)
			if ref == "" {
				return "", errors.New(`"$" not followed by an option name (write "$$" for a literal "$")`)
			}
			i += len(ref)
		}
		group, name := section, ref
		if g, n, ok := strings.Cut(ref, "."); ok {
			group, name = g, n
		}
		e, ok := src.get(group, name)
		if !ok && group == section {
			e, ok = src.get("DEFAULT", name)
		}
		if !ok {
			return "", fmt.Errorf(`"$%s" refers to an option that is not set (write "$$" for a literal "$")`, ref)
		}
		if *budget--; *budget < 0 {
			return "", fmt.Errorf("more than %d substitutions in one value", maxSubstitutions)
		}
		sub, err := expand(src, group, e.value, depth+1, budget)
		if err != nil {
			return "", err
		}
		b.WriteString(strings.TrimSpace(sub))
	}
	return b.String(), nil
}

// hiddenValue stands for a value an error must not show.
const hiddenValue = "(hidden: secret option)"

// secretOptions are the options whose values errors never show.
var secretOptions = map[string]bool{
	"service_auth.password":                 true,
	"health_manager.heartbeat_key":          true,
	"health_manager.heartbeat_key_previous": true,
	"database.connection":                   true,
}

// redact hides what an error about an option would show of a secret. A
// value that "$" substitution fills from a secret option is hidden with
// the reason (which may quote it); a database URL keeps all but its
// password.
func (s *sources) redact(section, option, shown, reason string) (string, string) {
	if s.substitutesSecret(section, option) {
		return hiddenValue, "invalid value (details hidden: it substitutes a secret option)"
	}
	switch {
	case section == "database" && option == "connection":
		return RedactURL(shown), reason
	case secretOptions[section+"."+option]:
		return hiddenValue, reason
	}
	return shown, reason
}

// involvesSecret reports whether the reference ref, read in section, is a
// secret option or substitutes one, as interpolate would resolve it.
// visited holds the options already searched, so that each is searched
// once however often it is named.
func (s *sources) involvesSecret(section, ref string, visited map[string]bool) bool {
	group, name := section, ref
	if g, n, ok := strings.Cut(ref, "."); ok {
		group, name = g, n
	}
	e, ok := s.get(group, name)
	if !ok && group == section {
		if secretOptions["DEFAULT."+name] {
			return true
		}
		e, ok = s.get("DEFAULT", name)
	}
	if secretOptions[group+"."+name] {
		return true
	}
	if !ok || visited[group+"."+name] {
		return false
	}
	visited[group+"."+name] = true
	for _, r := range references(e.value) {
		if s.involvesSecret(group, r, visited) {
			return true
		}
	}
	return false
}

// references lists the option references of a value the way interpolate
// reads them, without failing on malformed ones.
func references(v string) []string {
	var refs []string
	for i := 0; i < len(v); i++ {
		if v[i] != '$' {
			continue
		}
		rest := v[i+1:]
		switch {
		case strings.HasPrefix(rest, "$"):
			i++
		case strings.HasPrefix(rest, "{"):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				end = len(rest)
			}
			refs = append(refs, rest[1:end])
			i += end
		default:
			ref := optionName.FindString(rest)
			refs = append(refs, ref)
			i += len(ref)
		}
	}
	return refs
}
