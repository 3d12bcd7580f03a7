// Package lbapi holds hand-written Go types for the lb plugin messages that
// exist only in VPP master (lb API 1.2.0) and therefore in no govpp release:
// lb_conf_get, lb_add_del_as_v2, lb_as_set_weight and lb_as_v2_dump. They
// are written from the wire layouts and CRCs of VPP master's lb.api (all
// fields big-endian, in declaration order); docs/vpp.md, "Dialects", says
// when they are used.
//
// The package also registers its own control_ping pair. A govpp stream
// resolves reply ids within the package tree of the last message sent, so
// a dump of lb_as_v2_details must be followed by a ping from this tree.
package lbapi

import (
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/codec"
)

// APIVersion is the lb API version that introduced these messages.
const APIVersion = "1.2.0"

const (
	sizePrefix  = 1 + 16 + 1 // af, address union, length
	sizeAddress = 1 + 16     // af, address union
)

func encPrefix(b *codec.Buffer, p ip_types.AddressWithPrefix) {
	b.EncodeUint8(uint8(p.Address.Af))
	b.EncodeBytes(p.Address.Un.XXX_UnionData[:], 16)
	b.EncodeUint8(p.Len)
}

func decPrefix(b *codec.Buffer) ip_types.AddressWithPrefix {
	var p ip_types.AddressWithPrefix
	p.Address.Af = ip_types.AddressFamily(b.DecodeUint8())
	copy(p.Address.Un.XXX_UnionData[:], b.DecodeBytes(16))
	p.Len = b.DecodeUint8()
	return p
}

func encAddress(b *codec.Buffer, a ip_types.Address) {
	b.EncodeUint8(uint8(a.Af))
	b.EncodeBytes(a.Un.XXX_UnionData[:], 16)
}

func decAddress(b *codec.Buffer) ip_types.Address {
	var a ip_types.Address
	a.Af = ip_types.AddressFamily(b.DecodeUint8())
	copy(a.Un.XXX_UnionData[:], b.DecodeBytes(16))
	return a
}

func newBuf(b []byte, size int) *codec.Buffer {
	if b == nil {
		b = make([]byte, size)
	}
	return codec.NewBuffer(b)
}

// LbConfGet asks for the lb plugin's global configuration.
type LbConfGet struct{}

func (m *LbConfGet) Reset()                        { *m = LbConfGet{} }
func (*LbConfGet) GetMessageName() string          { return "lb_conf_get" }
func (*LbConfGet) GetCrcString() string            { return "51077d14" }
func (*LbConfGet) GetMessageType() api.MessageType { return api.RequestMessage }
func (*LbConfGet) Size() int                       { return 0 }
func (m *LbConfGet) Marshal(b []byte) ([]byte, error) {
	return newBuf(b, 0).Bytes(), nil
}
func (m *LbConfGet) Unmarshal(b []byte) error { return nil }

// LbConfGetReply carries the lb plugin's global configuration.
type LbConfGetReply struct {
	Retval               int32
	IP4SrcAddress        ip_types.IP4Address
	IP6SrcAddress        ip_types.IP6Address
	StickyBucketsPerCore uint32
	FlowTimeout          uint32
}

func (m *LbConfGetReply) Reset()                        { *m = LbConfGetReply{} }
func (*LbConfGetReply) GetMessageName() string          { return "lb_conf_get_reply" }
func (*LbConfGetReply) GetCrcString() string            { return "923427ac" }
func (*LbConfGetReply) GetMessageType() api.MessageType { return api.ReplyMessage }
func (*LbConfGetReply) Size() int                       { return 4 + 4 + 16 + 4 + 4 }
func (m *LbConfGetReply) Marshal(b []byte) ([]byte, error) {
	buf := newBuf(b, m.Size())
	buf.EncodeInt32(m.Retval)
	buf.EncodeBytes(m.IP4SrcAddress[:], 4)
	buf.EncodeBytes(m.IP6SrcAddress[:], 16)
	buf.EncodeUint32(m.StickyBucketsPerCore)
	buf.EncodeUint32(m.FlowTimeout)
	return buf.Bytes(), nil
}
func (m *LbConfGetReply) Unmarshal(b []byte) error {
	buf := codec.NewBuffer(b)
	m.Retval = buf.DecodeInt32()
	copy(m.IP4SrcAddress[:], buf.DecodeBytes(4))
	copy(m.IP6SrcAddress[:], buf.DecodeBytes(16))
	m.StickyBucketsPerCore = buf.DecodeUint32()
	m.FlowTimeout = buf.DecodeUint32()
	return nil
}

// LbAddDelAsV2 adds or deletes an application server with a weight.
type LbAddDelAsV2 struct {
	Pfx       ip_types.AddressWithPrefix
	Protocol  uint8
	Port      uint16
	AsAddress ip_types.Address
	Weight    uint8 // 0-100; the .api default (100) is not applied on the wire
	IsDel     bool
	IsFlush   bool
}

func (m *LbAddDelAsV2) Reset()                        { *m = LbAddDelAsV2{} }
func (*LbAddDelAsV2) GetMessageName() string          { return "lb_add_del_as_v2" }
func (*LbAddDelAsV2) GetCrcString() string            { return "2f1d3b0e" }
func (*LbAddDelAsV2) GetMessageType() api.MessageType { return api.RequestMessage }
func (*LbAddDelAsV2) Size() int                       { return sizePrefix + 1 + 2 + sizeAddress + 1 + 1 + 1 }
func (m *LbAddDelAsV2) Marshal(b []byte) ([]byte, error) {
	buf := newBuf(b, m.Size())
	encPrefix(buf, m.Pfx)
	buf.EncodeUint8(m.Protocol)
	buf.EncodeUint16(m.Port)
	encAddress(buf, m.AsAddress)
	buf.EncodeUint8(m.Weight)
	buf.EncodeBool(m.IsDel)
	buf.EncodeBool(m.IsFlush)
	return buf.Bytes(), nil
}
func (m *LbAddDelAsV2) Unmarshal(b []byte) error {
	buf := codec.NewBuffer(b)
	m.Pfx = decPrefix(buf)
	m.Protocol = buf.DecodeUint8()
	m.Port = buf.DecodeUint16()
	m.AsAddress = decAddress(buf)
	m.Weight = buf.DecodeUint8()
	m.IsDel = buf.DecodeBool()
	m.IsFlush = buf.DecodeBool()
	return nil
}

// LbAddDelAsV2Reply answers LbAddDelAsV2.
type LbAddDelAsV2Reply struct{ Retval int32 }

func (m *LbAddDelAsV2Reply) Reset()                        { *m = LbAddDelAsV2Reply{} }
func (*LbAddDelAsV2Reply) GetMessageName() string          { return "lb_add_del_as_v2_reply" }
func (*LbAddDelAsV2Reply) GetCrcString() string            { return "e8d4e804" }
func (*LbAddDelAsV2Reply) GetMessageType() api.MessageType { return api.ReplyMessage }
func (*LbAddDelAsV2Reply) Size() int                       { return 4 }
func (m *LbAddDelAsV2Reply) Marshal(b []byte) ([]byte, error) {
	buf := newBuf(b, 4)
	buf.EncodeInt32(m.Retval)
	return buf.Bytes(), nil
}
func (m *LbAddDelAsV2Reply) Unmarshal(b []byte) error {
	m.Retval = codec.NewBuffer(b).DecodeInt32()
	return nil
}

// LbAsSetWeight changes the weight of an existing, in-use AS; IsFlush also
// evicts its flows.
type LbAsSetWeight struct {
	Pfx       ip_types.AddressWithPrefix
	Protocol  uint8
	Port      uint16
	AsAddress ip_types.Address
	Weight    uint8
	IsFlush   bool
}

func (m *LbAsSetWeight) Reset()                        { *m = LbAsSetWeight{} }
func (*LbAsSetWeight) GetMessageName() string          { return "lb_as_set_weight" }
func (*LbAsSetWeight) GetCrcString() string            { return "2d89bdbd" }
func (*LbAsSetWeight) GetMessageType() api.MessageType { return api.RequestMessage }
func (*LbAsSetWeight) Size() int                       { return sizePrefix + 1 + 2 + sizeAddress + 1 + 1 }
func (m *LbAsSetWeight) Marshal(b []byte) ([]byte, error) {
	buf := newBuf(b, m.Size())
	encPrefix(buf, m.Pfx)
	buf.EncodeUint8(m.Protocol)
	buf.EncodeUint16(m.Port)
	encAddress(buf, m.AsAddress)
	buf.EncodeUint8(m.Weight)
	buf.EncodeBool(m.IsFlush)
	return buf.Bytes(), nil
}
func (m *LbAsSetWeight) Unmarshal(b []byte) error {
	buf := codec.NewBuffer(b)
	m.Pfx = decPrefix(buf)
	m.Protocol = buf.DecodeUint8()
	m.Port = buf.DecodeUint16()
	m.AsAddress = decAddress(buf)
	m.Weight = buf.DecodeUint8()
	m.IsFlush = buf.DecodeBool()
	return nil
}

// LbAsSetWeightReply answers LbAsSetWeight.
type LbAsSetWeightReply struct{ Retval int32 }

func (m *LbAsSetWeightReply) Reset()                        { *m = LbAsSetWeightReply{} }
func (*LbAsSetWeightReply) GetMessageName() string          { return "lb_as_set_weight_reply" }
func (*LbAsSetWeightReply) GetCrcString() string            { return "e8d4e804" }
func (*LbAsSetWeightReply) GetMessageType() api.MessageType { return api.ReplyMessage }
func (*LbAsSetWeightReply) Size() int                       { return 4 }
func (m *LbAsSetWeightReply) Marshal(b []byte) ([]byte, error) {
	buf := newBuf(b, 4)
	buf.EncodeInt32(m.Retval)
	return buf.Bytes(), nil
}
func (m *LbAsSetWeightReply) Unmarshal(b []byte) error {
	m.Retval = codec.NewBuffer(b).DecodeInt32()
	return nil
}

// LbAsV2Dump lists ASes with their weights. VPP's IPv4 prefix filter is
// broken even on master: send the all-zero prefix and filter client-side.
type LbAsV2Dump struct {
	Pfx      ip_types.AddressWithPrefix
	Protocol uint8
	Port     uint16
}

func (m *LbAsV2Dump) Reset()                        { *m = LbAsV2Dump{} }
func (*LbAsV2Dump) GetMessageName() string          { return "lb_as_v2_dump" }
func (*LbAsV2Dump) GetCrcString() string            { return "1063f819" }
func (*LbAsV2Dump) GetMessageType() api.MessageType { return api.RequestMessage }
func (*LbAsV2Dump) Size() int                       { return sizePrefix + 1 + 2 }
func (m *LbAsV2Dump) Marshal(b []byte) ([]byte, error) {
	buf := newBuf(b, m.Size())
	encPrefix(buf, m.Pfx)
	buf.EncodeUint8(m.Protocol)
	buf.EncodeUint16(m.Port)
	return buf.Bytes(), nil
}
func (m *LbAsV2Dump) Unmarshal(b []byte) error {
	buf := codec.NewBuffer(b)
	m.Pfx = decPrefix(buf)
	m.Protocol = buf.DecodeUint8()
	m.Port = buf.DecodeUint16()
	return nil
}

// LbAsV2Details is one AS of an LbAsV2Dump.
type LbAsV2Details struct {
	VipPfx      ip_types.AddressWithPrefix
	VipProtocol uint8
	VipPort     uint16
	AppSrv      ip_types.Address
	Flags       uint8 // bit 0: used
	InUseSince  uint32
	Weight      uint8
	NumBuckets  uint32
}

func (m *LbAsV2Details) Reset()                        { *m = LbAsV2Details{} }
func (*LbAsV2Details) GetMessageName() string          { return "lb_as_v2_details" }
func (*LbAsV2Details) GetCrcString() string            { return "90064aae" }
func (*LbAsV2Details) GetMessageType() api.MessageType { return api.ReplyMessage }
func (*LbAsV2Details) Size() int                       { return sizePrefix + 1 + 2 + sizeAddress + 1 + 4 + 1 + 4 }
func (m *LbAsV2Details) Marshal(b []byte) ([]byte, error) {
	buf := newBuf(b, m.Size())
	encPrefix(buf, m.VipPfx)
	buf.EncodeUint8(m.VipProtocol)
	buf.EncodeUint16(m.VipPort)
	encAddress(buf, m.AppSrv)
	buf.EncodeUint8(m.Flags)
	buf.EncodeUint32(m.InUseSince)
	buf.EncodeUint8(m.Weight)
	buf.EncodeUint32(m.NumBuckets)
	return buf.Bytes(), nil
}
func (m *LbAsV2Details) Unmarshal(b []byte) error {
	buf := codec.NewBuffer(b)
	m.VipPfx = decPrefix(buf)
	m.VipProtocol = buf.DecodeUint8()
	m.VipPort = buf.DecodeUint16()
	m.AppSrv = decAddress(buf)
	m.Flags = buf.DecodeUint8()
	m.InUseSince = buf.DecodeUint32()
	m.Weight = buf.DecodeUint8()
	m.NumBuckets = buf.DecodeUint32()
	return nil
}

// ControlPing ends a dump of this package's details (same wire format and
// CRC as memclnt's).
type ControlPing struct{}

func (m *ControlPing) Reset()                        { *m = ControlPing{} }
func (*ControlPing) GetMessageName() string          { return "control_ping" }
func (*ControlPing) GetCrcString() string            { return "51077d14" }
func (*ControlPing) GetMessageType() api.MessageType { return api.RequestMessage }
func (*ControlPing) Size() int                       { return 0 }
func (m *ControlPing) Marshal(b []byte) ([]byte, error) {
	return newBuf(b, 0).Bytes(), nil
}
func (m *ControlPing) Unmarshal(b []byte) error { return nil }

// ControlPingReply is memclnt's control_ping_reply.
type ControlPingReply struct {
	Retval      int32
	ClientIndex uint32
	VpePID      uint32
}

func (m *ControlPingReply) Reset()                        { *m = ControlPingReply{} }
func (*ControlPingReply) GetMessageName() string          { return "control_ping_reply" }
func (*ControlPingReply) GetCrcString() string            { return "f6b0b8ca" }
func (*ControlPingReply) GetMessageType() api.MessageType { return api.ReplyMessage }
func (*ControlPingReply) Size() int                       { return 12 }
func (m *ControlPingReply) Marshal(b []byte) ([]byte, error) {
	buf := newBuf(b, 12)
	buf.EncodeInt32(m.Retval)
	buf.EncodeUint32(m.ClientIndex)
	buf.EncodeUint32(m.VpePID)
	return buf.Bytes(), nil
}
func (m *ControlPingReply) Unmarshal(b []byte) error {
	buf := codec.NewBuffer(b)
	m.Retval = buf.DecodeInt32()
	m.ClientIndex = buf.DecodeUint32()
	m.VpePID = buf.DecodeUint32()
	return nil
}

// Messages lists every message of the package.
func Messages() []api.Message {
	return []api.Message{
		(*LbConfGet)(nil), (*LbConfGetReply)(nil),
		(*LbAddDelAsV2)(nil), (*LbAddDelAsV2Reply)(nil),
		(*LbAsSetWeight)(nil), (*LbAsSetWeightReply)(nil),
		(*LbAsV2Dump)(nil), (*LbAsV2Details)(nil),
		(*ControlPing)(nil), (*ControlPingReply)(nil),
	}
}

func init() {
	for _, m := range Messages() {
		api.RegisterMessage(m, m.GetMessageName()+"_"+m.GetCrcString())
	}
}
