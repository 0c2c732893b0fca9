package portal

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/ai-data-analyst/analyst/config"
)

// Mailer sends an email.
type Mailer interface {
	Send(ctx context.Context, m Mail) error
}

// Mail is one message with a plain-text and an HTML body.
type Mail struct {
	To, Subject, Text, HTML string
}

// smtpMailer sends through email.smtp_url: smtp://[user:pass@]host[:587] (STARTTLS when the
// server offers it; credentials are only sent over TLS or to localhost) or
// smtps://[user:pass@]host[:465] (TLS from the start).
type smtpMailer struct {
	cfg  config.Email
	name string // instance name, the default sender name
}

func (m *smtpMailer) Send(ctx context.Context, msg Mail) error {
	if m.cfg.SMTPURL == "" {
		return errors.New("email is not configured (email.smtp_url in config/instance.yaml)")
	}
	u, err := url.Parse(m.cfg.SMTPURL)
	if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
		return errors.New("email.smtp_url must look like smtp://user:password@host:587 or smtps://host:465")
	}
	from := m.cfg.FromAddress
	if from == "" {
		return errors.New("email.from_address is not configured")
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"smtp": "587", "smtps": "465"}[u.Scheme]
	}
	addr := net.JoinHostPort(u.Hostname(), port)
	dialer := &net.Dialer{Timeout: 15 * time.Second}
	var conn net.Conn
	if u.Scheme == "smtps" {
		conn, err = (&tls.Dialer{NetDialer: dialer, Config: &tls.Config{ServerName: u.Hostname()}}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = dialer.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("smtp %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	c, err := smtp.NewClient(conn, u.Hostname())
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp %s: %w", addr, err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok && u.Scheme == "smtp" {
		if err := c.StartTLS(&tls.Config{ServerName: u.Hostname()}); err != nil {
			return fmt.Errorf("smtp %s: starttls: %w", addr, err)
		}
	}
	if u.User != nil {
		pass, _ := u.User.Password()
		if err := c.Auth(smtp.PlainAuth("", u.User.Username(), pass, u.Hostname())); err != nil {
			return fmt.Errorf("smtp %s: auth: %w", addr, err)
		}
	}
	body, err := m.build(from, msg)
	if err != nil {
		return err
	}
	if err := c.Mail(from); err != nil {
		return fmt.Errorf("smtp %s: MAIL FROM: %w", addr, err)
	}
	if err := c.Rcpt(msg.To); err != nil {
		return fmt.Errorf("smtp %s: RCPT TO: %w", addr, err)
	}
	wc, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp %s: DATA: %w", addr, err)
	}
	if _, err := wc.Write(body); err != nil {
		return err
	}
	if err := wc.Close(); err != nil {
		return fmt.Errorf("smtp %s: %w", addr, err)
	}
	return c.Quit()
}

// build writes a multipart/alternative message.
func (m *smtpMailer) build(from string, msg Mail) ([]byte, error) {
	name := m.cfg.FromName
	if name == "" {
		name = m.name
	}
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	id := make([]byte, 12)
	rand.Read(id)
	domain := from[strings.LastIndex(from, "@")+1:]
	hdr := []string{
		"From: " + (&mail.Address{Name: name, Address: from}).String(),
		"To: " + (&mail.Address{Address: msg.To}).String(),
		"Subject: " + mime.QEncoding.Encode("utf-8", msg.Subject),
		"Date: " + time.Now().Format(time.RFC1123Z),
		"Message-ID: <" + hex.EncodeToString(id) + "@" + domain + ">",
		"MIME-Version: 1.0",
		"Content-Type: multipart/alternative; boundary=" + mw.Boundary(),
	}
	var head bytes.Buffer
	for _, h := range hdr {
		head.WriteString(h + "\r\n")
	}
	head.WriteString("\r\n")
	for _, part := range []struct{ typ, body string }{{"text/plain", msg.Text}, {"text/html", msg.HTML}} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.typ + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"8bit"},
		})
		if err != nil {
			return nil, err
		}
		pw.Write([]byte(part.body))
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return append(head.Bytes(), b.Bytes()...), nil
}

var mailTemplate = template.Must(template.New("mail").Parse(`<!doctype html><html><body style="font-family:sans-serif">
<p>Hello,</p><p>open this link to {{.What}} for {{.Name}}:</p>
<p><a href="{{.Link}}" style="background:#0073D1;color:#fff;padding:10px 16px;border-radius:6px;text-decoration:none">{{.Button}}</a></p>
<p style="color:#6B7280">Or copy this address: {{.Link}}</p>
<p style="color:#6B7280">The link works once and expires in {{.Valid}}. If you did not ask for it, ignore this email.</p>
</body></html>`))

func mailHTML(name, what, link, valid string) string {
	var b bytes.Buffer
	mailTemplate.Execute(&b, map[string]string{"Name": name, "What": what, "Link": link, "Valid": valid, "Button": "Continue"})
	return b.String()
}
