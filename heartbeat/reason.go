package heartbeat

import (
	"errors"
	"fmt"
)

// Reason classifies why a datagram was rejected. Every rejection carries
// exactly one, so the receiver can count rejections by a fixed label set.
type Reason uint8

// The rejection reasons, in the order a datagram meets them.
const (
	// ReasonNone is the zero value; no error carries it.
	ReasonNone Reason = iota
	// ReasonShort: the datagram cannot even hold a 32-byte raw MAC.
	ReasonShort
	// ReasonBadMAC: no key verifies the datagram in either MAC form.
	ReasonBadMAC
	// ReasonNotZlib: the MAC is valid but the payload is not one complete
	// zlib stream (bad header, corrupt or truncated data, bad Adler-32).
	ReasonNotZlib
	// ReasonTooLarge: the payload inflates beyond the configured cap.
	ReasonTooLarge
	// ReasonNotUTF8: the inflated text is not valid UTF-8.
	ReasonNotUTF8
	// ReasonNotJSON: the text is not exactly one strict JSON value.
	ReasonNotJSON
	// ReasonNotObject: the JSON value is valid but not an object.
	ReasonNotObject
	// ReasonMalformed: the object is not a heartbeat Octavia could process
	// to the end (a required field is missing or has the wrong type).
	ReasonMalformed
	// ReasonReplayFields: the replay guard is on and the message carries
	// "ts" or "boot" but not all of "ts", "boot" and "seq", or a "boot"
	// that is empty or too long.
	ReasonReplayFields
	// ReasonReplayWindow: the replay guard is on and "ts" is further than
	// replay_window from the receiver's clock.
	ReasonReplayWindow
	// ReasonReplayNotNewer: the replay guard is on and ("boot", "seq") is
	// not newer than the last message accepted for that amphora.
	ReasonReplayNotNewer
	reasonCount
)

var reasonNames = [reasonCount]string{
	ReasonNone:      "none",
	ReasonShort:     "short",
	ReasonBadMAC:    "bad_mac",
	ReasonNotZlib:   "not_zlib",
	ReasonTooLarge:  "too_large",
	ReasonNotUTF8:   "not_utf8",
	ReasonNotJSON:   "not_json",
	ReasonNotObject: "not_object",
	ReasonMalformed: "malformed",

	ReasonReplayFields:   "replay_fields_invalid",
	ReasonReplayWindow:   "replay_ts_outside_window",
	ReasonReplayNotNewer: "replay_not_newer",
}

// String returns the stable label used in logs and metrics.
func (r Reason) String() string {
	if r < reasonCount {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Reasons lists every rejection reason, so that metrics can be created for
// each label up front and read as zero rather than absent.
func Reasons() []Reason {
	out := make([]Reason, 0, reasonCount-1)
	for r := ReasonShort; r < reasonCount; r++ {
		out = append(out, r)
	}
	return out
}

// Error is a rejected datagram or message. It never contains key material.
type Error struct {
	Reason Reason
	// Field names the offending field for ReasonMalformed, as a path such as
	// `listeners["<id>"].stats.tx`.
	Field string
	// Detail says what exactly was wrong.
	Detail string
	// Err is the underlying library error, if any (zlib, ...).
	Err error
}

func (e *Error) Error() string {
	msg := "heartbeat rejected (" + e.Reason.String() + ")"
	if e.Field != "" {
		msg += ": " + e.Field
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// ReasonOf extracts the rejection reason from an error returned by this
// package; it returns ReasonNone for nil and for foreign errors.
func ReasonOf(err error) Reason {
	var he *Error
	if errors.As(err, &he) {
		return he.Reason
	}
	return ReasonNone
}

func reject(r Reason, detail string) *Error { return &Error{Reason: r, Detail: detail} }

func malformed(field, detail string) *Error {
	return &Error{Reason: ReasonMalformed, Field: field, Detail: detail}
}
