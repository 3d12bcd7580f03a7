package octaviaconf

// INI is a set of oslo.config INI files merged in order, for a program
// whose options are not those of octavia.conf (the amphora agent reads
// amphora-agent.conf through it). It reads values the way Load does:
// continuation lines, no inline comments, and "$name", "${group.name}"
// and "$$" substitution.
type INI struct{ src *sources }

// ReadINI reads the files in order; a later file overrides options set
// by an earlier one, as with oslo's repeated --config-file. Every file
// that cannot be read or parsed is reported, each as a *FileError.
func ReadINI(files ...string) (*INI, error) {
	src, err := readFiles(files)
	if err != nil {
		return nil, err
	}
	return &INI{src: src}, nil
}

// Lookup returns an option's value after "$" substitution, trimmed of
// surrounding whitespace; set is false when no file sets it. A failed
// substitution is an *OptionError that shows no secret, with set false.
func (f *INI) Lookup(section, option string) (value string, set bool, err error) {
	r := &reader{src: f.src}
	v, _, ok := r.raw(section, option, secretOptions[section+"."+option])
	if len(r.errs) > 0 {
		return "", false, r.errs[0]
	}
	return v, ok, nil
}

// SubstitutesSecret reports whether an option that is not itself secret
// takes the value of a secret option through "$" substitution, so that an
// error about its value must not show it.
func (f *INI) SubstitutesSecret(section, option string) bool {
	return !secretOptions[section+"."+option] && f.src.substitutesSecret(section, option)
}

// substitutesSecret reports whether an option's value names a secret
// option, directly or through other references.
func (s *sources) substitutesSecret(section, option string) bool {
	e, _ := s.get(section, option)
	visited := map[string]bool{}
	for _, ref := range references(e.value) {
		if s.involvesSecret(section, ref, visited) {
			return true
		}
	}
	return false
}
