package octaviaconf

import "fmt"

// OptionError is a bad value in a config file.
type OptionError struct {
	File    string
	Section string
	Option  string
	// Value is the value as written, with secrets hidden.
	Value  string
	Reason string
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("%s: [%s] %s = %q: %s", e.File, e.Section, e.Option, e.Value, e.Reason)
}

// FileError is a config file that cannot be read or is not valid INI.
type FileError struct {
	File string
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("read config file %s: %v", e.File, e.Err) }

func (e *FileError) Unwrap() error { return e.Err }
