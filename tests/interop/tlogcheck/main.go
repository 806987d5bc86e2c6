// Command tlogcheck checks what a Kapok log publishes with Go's golang.org/x/mod/sumdb/note
// and sumdb/tlog, code Kapok's authors did not write: a checkpoint and its witnesses'
// cosignatures, an inclusion proof of an event, and a consistency proof from an older
// checkpoint. It prints what it proved, one line each, and exits 1 at the first failure.
//
// Usage: tlogcheck -vkey FILE -checkpoint FILE [-witness VKEY]... [-proof FILE]
// [-old FILE -consistency FILE]
package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode/utf16"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// cosigner verifies c2sp.org/tlog-cosignature Ed25519 cosignatures (type 0x04), which
// note.NewVerifier does not know: the signature is an 8-byte big-endian timestamp and an
// Ed25519 signature of "cosignature/v1\ntime <timestamp>\n" followed by the note text.
type cosigner struct {
	name string
	hash uint32
	key  ed25519.PublicKey
	time uint64
}

func newCosigner(vkey string) (*cosigner, error) {
	parts := strings.SplitN(strings.TrimSpace(vkey), "+", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("malformed witness key %q", vkey)
	}
	key, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(key) != 33 || key[0] != 0x04 {
		return nil, fmt.Errorf("witness key %q is not an Ed25519 cosignature key", vkey)
	}
	sum := sha256.Sum256(append([]byte(parts[0]+"\n"), key...))
	if hex.EncodeToString(sum[:4]) != parts[1] {
		return nil, fmt.Errorf("witness key %q: the key ID is not the key's", vkey)
	}
	return &cosigner{parts[0], binary.BigEndian.Uint32(sum[:4]), ed25519.PublicKey(key[1:]), 0}, nil
}

func (c *cosigner) Name() string    { return c.name }
func (c *cosigner) KeyHash() uint32 { return c.hash }
func (c *cosigner) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	timestamp := binary.BigEndian.Uint64(sig[:8])
	signed := append([]byte(fmt.Sprintf("cosignature/v1\ntime %d\n", timestamp)), msg...)
	if !ed25519.Verify(c.key, signed, sig[8:]) {
		return false
	}
	c.time = timestamp
	return true
}

// checkpoint is a note opened with Kapok's key: origin, tree size and root hash.
type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
	note   *note.Note
}

func openCheckpoint(path string, verifiers ...note.Verifier) checkpoint {
	data := read(path)
	n, err := note.Open(data, note.VerifierList(verifiers...))
	check(err, "%s: note.Open", path)
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 {
		fail("%s: not a checkpoint: %q", path, n.Text)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	check(err, "%s: tree size", path)
	root, err := tlog.ParseHash(lines[2])
	check(err, "%s: root hash", path)
	if lines[0] != verifiers[0].Name() {
		fail("%s: origin %q is not the log's key name %q", path, lines[0], verifiers[0].Name())
	}
	return checkpoint{lines[0], size, root, n}
}

func signedBy(n *note.Note, name string) bool {
	for _, sig := range n.Sigs {
		if sig.Name == name {
			return true
		}
	}
	return false
}

// inclusion is the part of Kapok's kapok-inclusion-proof-v1 document checked here.
type inclusion struct {
	Event struct {
		LeafIndex         int64  `json:"leaf_index"`
		OriginatorID      string `json:"originator_id"`
		OriginatorVersion int64  `json:"originator_version"`
		Topic             string `json:"topic"`
		State             string `json:"state"`
	} `json:"event"`
	InclusionProof []string `json:"inclusion_proof"`
	TreeHead       struct {
		TreeSize int64 `json:"tree_size"`
	} `json:"tree_head"`
}

// leaf is the stored event's leaf bytes as the README gives them: the JSON object of its
// four fields, keys sorted, no spaces, non-ASCII escaped as \uXXXX.
func leaf(e inclusion) []byte {
	return []byte(fmt.Sprintf(`{"originator_id":%s,"originator_version":%d,"state":%s,"topic":%s}`,
		jsonText(e.Event.OriginatorID), e.Event.OriginatorVersion, jsonText(e.Event.State),
		jsonText(e.Event.Topic)))
}

func jsonText(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteString(`\` + string(r))
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r > 0x7e:
			for _, unit := range utf16.Encode([]rune{r}) {
				fmt.Fprintf(&b, `\u%04x`, unit)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

type consistency struct {
	OldSize int64    `json:"old_size"`
	NewSize int64    `json:"new_size"`
	Proof   []string `json:"proof"`
}

type witnesses []string

func (w *witnesses) String() string     { return strings.Join(*w, ",") }
func (w *witnesses) Set(v string) error { *w = append(*w, v); return nil }

func main() {
	vkeyPath := flag.String("vkey", "", "the log's verifier key (file)")
	checkpointPath := flag.String("checkpoint", "", "a checkpoint, cosigned or not (file)")
	proofPath := flag.String("proof", "", "an inclusion proof document (file)")
	oldPath := flag.String("old", "", "an older checkpoint (file)")
	consistencyPath := flag.String("consistency", "", "/audit/consistency from -old to -checkpoint (file)")
	var cosigners witnesses
	flag.Var(&cosigners, "witness", "a witness's verifier key whose cosignature is required (repeatable)")
	flag.Parse()

	verifier, err := note.NewVerifier(strings.TrimSpace(string(read(*vkeyPath))))
	check(err, "note.NewVerifier")
	verifiers := []note.Verifier{verifier}
	for _, vkey := range cosigners {
		c, err := newCosigner(vkey)
		check(err, "witness key")
		verifiers = append(verifiers, c)
	}
	latest := openCheckpoint(*checkpointPath, verifiers...)
	if !signedBy(latest.note, verifier.Name()) {
		fail("the checkpoint bears no signature of the log's key")
	}
	fmt.Printf("checkpoint %s size %d root %s: signed by %s\n", latest.origin, latest.size,
		latest.root, verifier.Name())
	for _, v := range verifiers[1:] {
		c := v.(*cosigner)
		if !signedBy(latest.note, c.name) {
			fail("the checkpoint bears no cosignature of witness %s", c.name)
		}
		fmt.Printf("cosigned by %s at %d\n", c.name, c.time)
	}

	if *proofPath != "" {
		var document inclusion
		check(json.Unmarshal(read(*proofPath), &document), "%s", *proofPath)
		if document.TreeHead.TreeSize != latest.size {
			fail("the inclusion proof is against tree size %d, not %d", document.TreeHead.TreeSize, latest.size)
		}
		proof := make(tlog.RecordProof, len(document.InclusionProof))
		for i, node := range document.InclusionProof {
			raw, err := hex.DecodeString(node)
			if err != nil || len(raw) != tlog.HashSize {
				fail("inclusion proof hash %d is not a hex SHA-256", i)
			}
			copy(proof[i][:], raw)
		}
		record := tlog.RecordHash(leaf(document))
		check(tlog.CheckRecord(proof, latest.size, latest.root, document.Event.LeafIndex, record),
			"tlog.CheckRecord of leaf %d", document.Event.LeafIndex)
		fmt.Printf("leaf %d (%s version %d) is in tree size %d\n", document.Event.LeafIndex,
			document.Event.OriginatorID, document.Event.OriginatorVersion, latest.size)
	}

	if *oldPath != "" {
		old := openCheckpoint(*oldPath, verifier)
		var document consistency
		check(json.Unmarshal(read(*consistencyPath), &document), "%s", *consistencyPath)
		if document.OldSize != old.size || document.NewSize != latest.size {
			fail("the consistency proof is from %d to %d, not %d to %d", document.OldSize,
				document.NewSize, old.size, latest.size)
		}
		proof := make(tlog.TreeProof, len(document.Proof))
		for i, node := range document.Proof {
			hash, err := tlog.ParseHash(node)
			check(err, "consistency proof hash %d", i)
			proof[i] = hash
		}
		check(tlog.CheckTree(proof, latest.size, latest.root, old.size, old.root),
			"tlog.CheckTree from %d to %d", old.size, latest.size)
		fmt.Printf("tree size %d (root %s) is a prefix of tree size %d\n", old.size, old.root, latest.size)
	}
	fmt.Println("OK")
}

func read(path string) []byte {
	data, err := os.ReadFile(path)
	check(err, "read")
	return data
}

func check(err error, format string, args ...interface{}) {
	if err != nil {
		fail("%s: %v", fmt.Sprintf(format, args...), err)
	}
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
	os.Exit(1)
}
