package heartbeat

// Verify authenticates a datagram and returns its inflated payload, the
// heartbeat's JSON text, in a new slice the caller owns. It is the envelope
// step alone (MAC, then zlib within MaxInflatedBytes), for callers that
// want the text without the message model; the text is not yet checked to
// be UTF-8 or JSON. DecodeMessage of the text gives what Open gives, the
// same message or the same rejection. Nothing is inflated before a MAC has
// matched.
func (kr *Keyring) Verify(datagram []byte) ([]byte, Verified, error) {
	payload, v, verr := kr.verify(datagram)
	if verr != nil {
		return nil, v, verr
	}
	text, ierr := inflateZlib(nil, payload, kr.maxInflated)
	if ierr != nil {
		return nil, v, ierr
	}
	return text, v, nil
}
