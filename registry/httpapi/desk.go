package httpapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// The reception desk's pages live under /desk. Staff sign in with an
// account of their own (`registry users add`), bound to one or more sites;
// the session is a cookie holding 256 random bits, of which the store
// keeps only a hash. The cookie is HttpOnly, SameSite=Strict, Secure and
// named __Host-… behind TLS, and lasts the browser session; the server
// ends a session after registry.SessionIdle without a request and
// registry.SessionMax after sign-in. Every state-changing request of the
// pages must come from the pages themselves (http.CrossOriginProtection:
// Sec-Fetch-Site, else Origin against Host). MaxFailedSignIns failed
// sign-ins in a row lock an account for LockoutPeriod, and failures count
// against the client's limit of failed authentications too.
//
// The desk only writes: it registers, lists open visits by short code,
// area and time, and checks out. Nothing on these pages reads sealed
// contact data, which the server cannot open anyway.

// touchEvery is how often a session's last use is written: a session
// stays alive while used, without a write per request.
const touchEvery = time.Minute

// deskCookieName is the session cookie's name: with the __Host- prefix
// when the cookie is Secure (the browser then refuses it from anything
// but this host over TLS, with Path=/).
func (s *Server) deskCookieName(r *http.Request) string {
	if s.secure(r) {
		return "__Host-rg_desk"
	}
	return "rg_desk"
}

// deskRequest is a signed-in request of the desk's pages.
type deskRequest struct {
	user *registry.User
	sess *registry.Session
	site *registry.Site // the {site} of the route, or nil
	lang string
}

// deskSession returns the signed-in account of r, or nil when there is
// none (no or an unknown cookie, an ended session, a disabled account).
func (s *Server) deskSession(ctx context.Context, r *http.Request) (*registry.User, *registry.Session, error) {
	c, err := r.Cookie(s.deskCookieName(r))
	if err != nil || len(c.Value) != 43 {
		return nil, nil, nil
	}
	hash := registry.HashSessionSecret(c.Value)
	sess, err := s.cfg.Store.Session(ctx, hash)
	if registry.ErrorCode(err) == registry.ENOTFOUND {
		return nil, nil, nil
	} else if err != nil {
		return nil, nil, err
	}
	now := s.cfg.Now()
	if sess.Expired(now) {
		return nil, nil, s.cfg.Store.DeleteSession(ctx, hash)
	}
	u, err := s.cfg.Store.User(ctx, sess.Login)
	if registry.ErrorCode(err) == registry.ENOTFOUND {
		return nil, nil, s.cfg.Store.DeleteSession(ctx, hash)
	} else if err != nil {
		return nil, nil, err
	}
	if u.DisabledAt != nil {
		return nil, nil, nil
	}
	if now.Sub(sess.LastSeen) >= touchEvery {
		if err := s.cfg.Store.TouchSession(ctx, hash, now); err != nil {
			return nil, nil, err
		}
	}
	return u, sess, nil
}

// desk wraps a handler of the desk's pages: without a session it
// redirects to the sign-in page; an account that must change its
// password goes to the password page first; a route with {site} needs a
// configured site the account works for (403 otherwise).
func (s *Server) desk(h func(http.ResponseWriter, *http.Request, *deskRequest)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		lang := preferredLang(r)
		u, sess, err := s.deskSession(r.Context(), r)
		if err != nil {
			s.renderError(w, r, lang, err, nil, nil)
			return
		}
		if u == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/desk/login?lang="+lang, http.StatusSeeOther)
				return
			}
			s.renderLogin(w, r, http.StatusUnauthorized, lang, "session_expired", true, "")
			return
		}
		if u.MustChange && !strings.HasPrefix(r.URL.Path, "/desk/password") {
			http.Redirect(w, r, "/desk/password?lang="+lang, http.StatusSeeOther)
			return
		}
		if rs, ok := restrictedRoles[u.Role]; ok && !rs.may(r.URL.Path) {
			// A scheduler or host account sees its own pages, nothing else.
			if home := rs.home(u); r.Method == http.MethodGet && home != "" {
				http.Redirect(w, r, home+"?lang="+lang, http.StatusSeeOther)
				return
			}
			s.renderMessage(w, r, http.StatusForbidden, lang, "title_error", "msg_forbidden_site", nil)
			return
		}
		dr := &deskRequest{user: u, sess: sess, lang: lang}
		if code := r.PathValue("site"); code != "" {
			if !u.MaySite(code) {
				d := s.deskPage(r, dr, "title_error")
				d.Message, d.Alert = d.T["msg_forbidden_site"], true
				s.render(w, r, http.StatusForbidden, "message", d)
				return
			}
			site, err := s.cfg.Intake.Site(r.Context(), code)
			if registry.ErrorCode(err) == registry.ENOTFOUND {
				s.renderMessage(w, r, http.StatusNotFound, lang, "title_notfound", "msg_notfound", nil)
				return
			} else if err != nil {
				s.renderError(w, r, lang, err, nil, nil)
				return
			}
			dr.site = site
		}
		h(w, r, dr)
	}
}

// restrictedRoles are the accounts that may open only some desk pages:
// what they may open, and the page of their site they start on.
var restrictedRoles = map[registry.UserRole]struct {
	may  func(path string) bool
	home func(u *registry.User) string
}{
	registry.UserScheduler: {schedulerMay, sitePage("book")},
	registry.UserHost:      {hostMay, sitePage("host")},
	registry.UserDPO:       {dpoMay, func(*registry.User) string { return "/dpo/" }},
}

// homeOf is the page an account starts on: its role's own page, else
// the desk (which opens the account's site).
func homeOf(u *registry.User) string {
	if rs, ok := restrictedRoles[u.Role]; ok {
		if h := rs.home(u); h != "" {
			return h
		}
	}
	if len(u.Sites) == 1 {
		return "/desk/" + u.Sites[0] + "/"
	}
	return "/desk/"
}

// sitePage is the home of an account that works at sites: the page of
// its first site ("" without one).
func sitePage(page string) func(u *registry.User) string {
	return func(u *registry.User) string {
		if len(u.Sites) == 0 {
			return ""
		}
		return "/desk/" + u.Sites[0] + "/" + page
	}
}

// dpoMay reports whether a DPO account may open path: the DPO's pages,
// the password page and sign-out.
func dpoMay(path string) bool {
	return strings.HasPrefix(path, "/dpo/") || strings.HasPrefix(path, "/desk/password") || path == "/desk/logout"
}

// hostMay reports whether a host account may open path: its
// appointments page, booking and cancelling its own, the password page
// and sign-out.
func hostMay(path string) bool {
	return strings.HasSuffix(path, "/host") || strings.HasSuffix(path, "/book") || strings.HasSuffix(path, "/cancel") ||
		strings.HasPrefix(path, "/desk/password") || path == "/desk/logout"
}

// schedulerMay reports whether a scheduler account may open path: booking,
// the day list, cancelling, the password page and sign-out.
func schedulerMay(path string) bool {
	return strings.HasSuffix(path, "/book") || strings.HasSuffix(path, "/day") || strings.HasSuffix(path, "/cancel") ||
		strings.HasPrefix(path, "/desk/password") || path == "/desk/logout"
}

// deskPage returns the page data of a desk page.
func (s *Server) deskPage(r *http.Request, dr *deskRequest, titleKey string) *pageData {
	d := s.newPage(r, dr.site, dr.lang, titleKey)
	d.Desk, d.User, d.Scripts = true, dr.user, []string{"desk.js"}
	if r.Method == http.MethodGet && r.URL.Query().Get("changed") == "password" {
		d.Flash = d.T["password_continue"]
	}
	for _, code := range dr.user.Sites {
		if dr.site != nil && code == dr.site.Code {
			continue
		}
		if site, err := s.cfg.Intake.Site(r.Context(), code); err == nil {
			d.OtherSites = append(d.OtherSites, site)
		}
	}
	return d
}

// renderLogin shows the sign-in page with a message (a text key, or "").
func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, lang, msgKey string, alert bool, login string) {
	d := s.newPage(r, nil, lang, "title_login")
	d.Desk, d.Login = true, login
	if msgKey != "" {
		d.Message, d.Alert = d.T[msgKey], alert
	}
	s.render(w, r, status, "desk_login", d)
}

// handleDeskLoginPage serves GET /desk/login.
func (s *Server) handleDeskLoginPage(w http.ResponseWriter, r *http.Request) {
	lang := preferredLang(r)
	if u, _, err := s.deskSession(r.Context(), r); err == nil && u != nil {
		http.Redirect(w, r, "/desk/?lang="+lang, http.StatusSeeOther)
		return
	}
	s.renderLogin(w, r, http.StatusOK, lang, "", false, "")
}

var loginFields = map[string]bool{"login": true, "password": true, "lang": true}

// handleDeskLogin serves POST /desk/login: 303 to the desk on success; 401
// with the same message for an unknown login, a wrong password, a locked
// or a disabled account (and as slowly: an unknown login costs a hash
// too); 429 when the client failed too often.
func (s *Server) handleDeskLogin(w http.ResponseWriter, r *http.Request) {
	vals, err := s.readForm(w, r, loginFields, nil)
	if err != nil {
		s.renderError(w, r, preferredLang(r), err, nil, nil)
		return
	}
	lang := formLang(vals.get("lang"))
	client, now := s.limits.clientKey(r), s.cfg.Now()
	if s.limits.authFailures.exhausted(client, now) {
		s.metrics.countLimited("auth_failures")
		_, wait := s.limits.authFailures.allow(client, now)
		w.Header().Set("Retry-After", retrySeconds(wait))
		s.renderLogin(w, r, http.StatusTooManyRequests, lang, "login_limited", true, "")
		return
	}
	login, pw := strings.ToLower(strings.TrimSpace(vals.get("login"))), vals.get("password")
	u, err := s.checkSignIn(r.Context(), login, pw, now)
	if err != nil {
		s.renderError(w, r, lang, err, nil, nil)
		return
	}
	if u == nil {
		s.limits.authFailures.allow(client, now)
		s.metrics.countError("sign_in_failed")
		s.renderLogin(w, r, http.StatusUnauthorized, lang, "login_failed", true, login)
		return
	}
	if err := s.startSession(r.Context(), w, r, u.Login, now); err != nil {
		s.renderError(w, r, lang, err, nil, nil)
		return
	}
	http.Redirect(w, r, "/desk/?lang="+lang, http.StatusSeeOther)
}

// checkSignIn returns the account when pw is its password and it may sign
// in, nil when not, recording the outcome.
func (s *Server) checkSignIn(ctx context.Context, login, pw string, now time.Time) (*registry.User, error) {
	if !registry.ValidLogin(login) {
		crypto.VerifyNothing(pw)
		return nil, s.auditUnknownSignIn(ctx, now)
	}
	u, err := s.cfg.Store.User(ctx, login)
	if registry.ErrorCode(err) == registry.ENOTFOUND {
		crypto.VerifyNothing(pw)
		return nil, s.auditUnknownSignIn(ctx, now)
	} else if err != nil {
		return nil, err
	}
	if u.DisabledAt != nil || u.Locked(now) {
		crypto.VerifyNothing(pw)
		_, err := s.cfg.Store.RecordSignIn(ctx, login, false, now) // audited, not counted
		return nil, err
	}
	ok := crypto.VerifyPassword(u.PasswordHash, pw)
	after, err := s.cfg.Store.RecordSignIn(ctx, login, ok, now)
	if err != nil {
		return nil, err
	}
	if !ok {
		if after.Locked(now) {
			s.cfg.Logger.Warn("desk account locked after failed sign-ins", "login", login, "until", after.LockedUntil.Format(time.RFC3339))
		}
		return nil, nil
	}
	return after, nil
}

// auditUnknownSignIn records a sign-in with a login that names no account,
// without what was typed.
func (s *Server) auditUnknownSignIn(ctx context.Context, now time.Time) error {
	ev, err := registry.NewAuditEvent(now, registry.ActorAnonymous, "", registry.SignInFailed{Reason: "unknown login"})
	if err != nil {
		return err
	}
	return s.cfg.Store.AppendAudit(ctx, ev)
}

// startSession creates a session for login and sets its cookie.
func (s *Server) startSession(ctx context.Context, w http.ResponseWriter, r *http.Request, login string, now time.Time) error {
	secret, hash := registry.NewSessionSecret()
	if err := s.cfg.Store.CreateSession(ctx, &registry.Session{Hash: hash, Login: login, CreatedAt: now, LastSeen: now}); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: s.deskCookieName(r), Value: secret, Path: "/", HttpOnly: true,
		Secure: s.secure(r), SameSite: http.SameSiteStrictMode})
	return nil
}

// handleDeskLogout serves POST /desk/logout: the session ends and its
// cookie is cleared.
func (s *Server) handleDeskLogout(w http.ResponseWriter, r *http.Request) {
	vals, err := s.readForm(w, r, map[string]bool{"lang": true}, nil)
	if err != nil {
		s.renderError(w, r, preferredLang(r), err, nil, nil)
		return
	}
	if c, err := r.Cookie(s.deskCookieName(r)); err == nil {
		if err := s.cfg.Store.DeleteSession(r.Context(), registry.HashSessionSecret(c.Value)); err != nil {
			s.renderError(w, r, formLang(vals.get("lang")), err, nil, nil)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: s.deskCookieName(r), Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: s.secure(r), SameSite: http.SameSiteStrictMode})
	s.renderLogin(w, r, http.StatusOK, formLang(vals.get("lang")), "logged_out", false, "")
}

// crossOrigin refuses state-changing requests from other origins
// (http.CrossOriginProtection) with a page.
func (s *Server) crossOrigin() *http.CrossOriginProtection {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.metrics.countError("cross_origin")
		s.renderMessage(w, r, http.StatusForbidden, preferredLang(r), "title_error", "msg_form", nil)
	}))
	return cop
}
