package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/octavia-vpp/health/heartbeat"
)

// maxInput bounds what decode and encode read: a UDP datagram is at most
// 64 KiB, its hex form twice that; a JSON heartbeat for encode is capped by
// the same limit the receiver applies after inflation.
const maxInput = heartbeat.DefaultMaxInflatedBytes

// keyFlag is --key, for every command that opens or seals heartbeats.
func keyFlag() cli.Flag {
	return &cli.StringFlag{
		Name:  "key",
		Usage: "heartbeat `KEY` (default: [health_manager] heartbeat_key from the config files)",
	}
}

var codecFlags = []cli.Flag{
	keyFlag(),
	&cli.BoolFlag{
		Name:  "hex",
		Usage: "the datagram is hex text rather than raw bytes",
	},
}

func decodeCommand() *cli.Command {
	return &cli.Command{
		Name:      "decode",
		Usage:     "verify and decode one heartbeat datagram",
		ArgsUsage: "[FILE]",
		Description: "Reads one datagram from FILE or standard input, verifies it as the receiver does\n" +
			"and prints the message as one line of JSON. A rejected datagram prints its reason\n" +
			"to standard error and exits 1.",
		Flags: codecFlags,
		Action: func(c *cli.Context) error {
			kr, input, err := codecInput(c)
			if err != nil {
				return err
			}
			if c.Bool("hex") {
				if input, err = decodeHex(input); err != nil {
					return cli.Exit("octavia-health-manager: input is not hex: "+err.Error(), exitRejected)
				}
			}
			msg, verified, err := kr.Open(input)
			if err != nil {
				return cli.Exit(err.Error(), exitRejected)
			}
			if verified.KeyIndex != 0 || verified.Form != heartbeat.MACHex {
				fmt.Fprintf(c.App.ErrWriter, "note: verified with key %d in %s MAC form\n", verified.KeyIndex, verified.Form)
			}
			if msg.Irregularity != nil {
				// The message is applied as Octavia applies it, often in
				// part; its text is shown as sent, since the encoder
				// writes only well-formed heartbeats.
				fmt.Fprintf(c.App.ErrWriter, "note: irregular heartbeat (%s: %s), applied as Octavia applies it (docs/deviations.md)\n",
					msg.Irregularity.Field, msg.Irregularity.Detail)
				text, _, err := kr.OpenText(input)
				if err != nil {
					return cli.Exit(err.Error(), exitRejected)
				}
				_, err = c.App.Writer.Write(append([]byte(text), '\n'))
				return err
			}
			out := append(msg.AppendJSON(nil), '\n')
			_, err = c.App.Writer.Write(out)
			return err
		},
	}
}

func encodeCommand() *cli.Command {
	return &cli.Command{
		Name:      "encode",
		Usage:     "seal a heartbeat message as an amphora agent would",
		ArgsUsage: "[FILE]",
		Description: "Reads a heartbeat as JSON from FILE or standard input, checks it as the receiver\n" +
			"would, and writes the sealed datagram: zlib level 9 plus the hex HMAC of the key.",
		Flags: codecFlags,
		Action: func(c *cli.Context) error {
			kr, input, err := codecInput(c)
			if err != nil {
				return err
			}
			msg, err := heartbeat.DecodeMessageStrict(bytes.TrimSpace(input))
			if err != nil {
				return cli.Exit(err.Error(), exitRejected)
			}
			datagram := kr.SealMessage(msg)
			if c.Bool("hex") {
				datagram = append([]byte(hex.EncodeToString(datagram)), '\n')
			}
			_, err = c.App.Writer.Write(datagram)
			return err
		},
	}
}

// codecInput is what decode and encode start from: the keyring and the
// input bytes.
func codecInput(c *cli.Context) (*heartbeat.Keyring, []byte, error) {
	cfg, err := loadConfig(c)
	if err != nil {
		return nil, nil, err
	}
	kr, err := keyringFor(c, cfg, true)
	if err != nil {
		return nil, nil, err
	}
	input, err := readInput(c)
	if err != nil {
		return nil, nil, err
	}
	return kr, input, nil
}

func readInput(c *cli.Context) ([]byte, error) {
	var r io.Reader = os.Stdin
	name := "standard input"
	switch c.NArg() {
	case 0:
	case 1:
		name = c.Args().First()
		f, err := os.Open(name)
		if err != nil {
			return nil, usageError("%v", err)
		}
		defer f.Close()
		r = f
	default:
		return nil, usageError("%s takes at most one FILE, got %d arguments", c.Command.Name, c.NArg())
	}
	data, err := io.ReadAll(io.LimitReader(r, 2*maxInput+1))
	if err != nil {
		return nil, usageError("read %s: %v", name, err)
	}
	if len(data) > 2*maxInput {
		return nil, cli.Exit(fmt.Sprintf("octavia-health-manager: %s is larger than %d bytes", name, 2*maxInput), exitRejected)
	}
	return data, nil
}

// decodeHex accepts hex text with any whitespace, such as a wrapped dump.
func decodeHex(text []byte) ([]byte, error) {
	compact := bytes.Join(bytes.Fields(text), nil)
	out := make([]byte, hex.DecodedLen(len(compact)))
	n, err := hex.Decode(out, compact)
	return out[:n], err
}
