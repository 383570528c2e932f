// The "httpd" workload of ../../../shared/PEERS.md in Go, for comparison with
// c_examples/http_hello.c: a raw `net` server (no net/http), one goroutine per
// connection, HTTP/1.1 keep-alive, the same fixed 14-byte body for every request.
// Standard library only.
//
//	go run . PORT        serve on 127.0.0.1:PORT until killed
//
// Framing is the same as http_hello.c: a request ends at an empty line, a
// Content-Length body is skipped, pipelined requests are answered with one write,
// "Connection: close" (or HTTP/1.0 without keep-alive) closes after the response.
package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
)

const response = "HTTP/1.1 200 OK\r\n" +
	"Content-Length: 14\r\n" +
	"Content-Type: text/plain\r\n" +
	"\r\n" +
	"Hello, World!\n"

const maxHeader = 8192
const maxBatch = 32

// headerValue returns the value of a header (case-insensitive name) in hdr.
func headerValue(hdr []byte, name string) ([]byte, bool) {
	lines := bytes.Split(hdr, []byte("\r\n"))
	for _, l := range lines[1:] {
		if len(l) > len(name) && l[len(name)] == ':' && bytes.EqualFold(l[:len(name)], []byte(name)) {
			return bytes.TrimSpace(l[len(name)+1:]), true
		}
	}
	return nil, false
}

func containsFold(v []byte, tok string) bool {
	return bytes.Contains(bytes.ToLower(v), []byte(tok))
}

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, maxHeader)
	out := make([]byte, 0, maxBatch*len(response))
	have, skip := 0, 0
	for {
		n, err := c.Read(buf[have:])
		if n <= 0 || err != nil {
			return
		}
		have += n
		pos := 0
		out = out[:0]
		closeAfter := false
		for {
			if skip > 0 {
				k := have - pos
				if k > skip {
					k = skip
				}
				pos += k
				skip -= k
				if skip > 0 {
					break
				}
			}
			end := bytes.Index(buf[pos:have], []byte("\r\n\r\n"))
			if end < 0 {
				break
			}
			hdr := buf[pos : pos+end+4]
			if v, ok := headerValue(hdr, "Content-Length"); ok {
				skip, _ = strconv.Atoi(string(v))
			}
			http10 := bytes.Contains(hdr, []byte("HTTP/1.0\r\n"))
			if v, ok := headerValue(hdr, "Connection"); ok {
				closeAfter = containsFold(v, "close") || (http10 && !containsFold(v, "keep-alive"))
			} else {
				closeAfter = http10
			}
			out = append(out, response...)
			pos += end + 4
			if closeAfter || len(out) == cap(out) {
				if _, err := c.Write(out); err != nil {
					return
				}
				out = out[:0]
				if closeAfter {
					return
				}
			}
		}
		if len(out) > 0 {
			if _, err := c.Write(out); err != nil {
				return
			}
		}
		copy(buf, buf[pos:have])
		have -= pos
		if have == len(buf) {
			return
		}
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: httpd PORT")
		os.Exit(2)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("go net httpd on %s\n", l.Addr())
	for {
		c, err := l.Accept()
		if err != nil {
			continue
		}
		go serve(c) // net.TCPConn has TCP_NODELAY on by default
	}
}
