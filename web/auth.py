"""Sign-up, log-in and log-out, who is asking, and who may do what.

Browsers use a session cookie (Flask-Login) with CSRF tokens on every form (Flask-WTF);
machine clients send ``Authorization: Bearer kapok_...`` tokens. ``require`` guards a view by
role; a buyer's views then filter by ``current_user.organisation``.
"""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import (Blueprint, abort, current_app, flash, redirect, render_template, request,
                   session, url_for)
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from identity.domain import MIN_PASSWORD, IdentityError, Person
from web.ratelimit import RateLimitExceeded, count_log_in, count_sign_up
from web.errors import status_for

bp = Blueprint("auth", __name__)


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed cookie sessions. A request without the cookie (every API call with a
    token) gets its new empty session without building the cookie's signer first."""

    def open_session(self, app, request):
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to continue."
login_manager.session_protection = "basic"


class SignedIn(UserMixin):
    """A Person as Flask-Login wants it."""

    def __init__(self, person: Person, by_token: bool = False):
        self.person, self.by_token = person, by_token

    def get_id(self) -> str:
        return self.person.email

    def __getattr__(self, name):
        return getattr(self.person, name)

    def has_role(self, *roles: str) -> bool:
        return self.person.role in roles


def identity():
    return current_app.extensions["kapok_identity"]


# The session's entry naming its LoginSession in the identity store: a signed cookie alone
# cannot be taken back, so each request asks the store whether its session still holds.
SESSION_ID = "_kapok_session"


@login_manager.user_loader
def load_user(email: str):
    person = identity().person_for_session(session.get(SESSION_ID, ""), email)
    return SignedIn(person) if person else None


@login_manager.request_loader
def load_user_from_request(req):
    header = req.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        person = identity().person_for_token(header.removeprefix("Bearer ").strip())
        return SignedIn(person, by_token=True) if person else None
    return None


@login_manager.unauthorized_handler
def unauthorized():
    if request.path.startswith("/api/"):
        abort(401, description="log in or send an API token: Authorization: Bearer kapok_...")
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def require(*roles: str):
    """Only signed-in users with one of ``roles`` (anonymous: to the log-in page; wrong
    role: 403)."""

    def decorator(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()
            if roles and not current_user.has_role(*roles):
                abort(403, description="your role may not see or do this")
            return view(*args, **kwargs)

        return guarded

    return decorator


def _safe_next(target: str | None) -> str:
    # Only paths on this site: an open redirect would turn the log-in page into a phishing aid.
    if target and target.startswith("/") and not target.startswith("//") \
            and not urlsplit(target).netloc:
        return target
    return url_for("storefront.home")


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(), Email(), Length(max=120)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class SignUpForm(FlaskForm):
    organisation = StringField("Company or organisation",
                               validators=[DataRequired(), Length(max=120)])
    name = StringField("Your name", validators=[DataRequired(), Length(max=120)])
    email = EmailField("Work e-mail", validators=[DataRequired(), Email(), Length(max=120)])
    password = PasswordField("Password", validators=[DataRequired(),
                                                     Length(min=MIN_PASSWORD, max=1024, message=(
                                f"use at least {MIN_PASSWORD} characters (a passphrase is best)"))])
    confirm = PasswordField("Repeat the password",
                            validators=[DataRequired(), EqualTo("password",
                                                                message="passwords differ")])


def _start_session(person: Person) -> None:
    # A new session on log-in: whatever an attacker planted before is dropped.
    session.clear()
    session[SESSION_ID] = identity().start_session(person.email)
    login_user(SignedIn(person))
    session.permanent = True


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            count_log_in()  # before the password is hashed: a refused guess costs nothing
        except RateLimitExceeded:
            flash("Too many log-in attempts. Wait a minute and try again.", "error")
            return render_template("auth/login.html", form=form), 429
        person = identity().authenticate(form.email.data, form.password.data)
        if person is not None:
            _start_session(person)
            flash(f"Welcome, {person.name}.", "success")
            return redirect(_safe_next(request.args.get("next")))
        flash("Wrong e-mail or password.", "error")
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    form = SignUpForm()
    status = 200
    if form.validate_on_submit():
        try:
            count_sign_up()
        except RateLimitExceeded as refused:
            flash(refused.description, "error")
            return render_template("auth/signup.html", form=form), 429
        try:
            person = identity().sign_up(form.organisation.data, form.name.data,
                                        form.email.data, form.password.data)
        except IdentityError as error:
            flash(str(error), "error")
            status = status_for(error)
        else:
            _start_session(person)
            flash(f"Welcome to Kapok, {person.name}: your organisation "
                  f"{person.organisation_name} is ready to buy.", "success")
            return redirect(_safe_next(request.args.get("next")))
    elif request.method == "POST":
        status = 400
    return render_template("auth/signup.html", form=form), status


@bp.post("/logout")
def logout():
    """Ends this browser's session for every process, or with ``everywhere`` all of the
    user's sessions (API tokens stay valid: they are revoked on their own page)."""
    everywhere = bool(request.form.get("everywhere"))
    if current_user.is_authenticated and not current_user.by_token:
        if everywhere:
            identity().end_sessions_of(current_user.email)
        else:
            identity().end_session(session.get(SESSION_ID, ""))
    logout_user()
    session.clear()
    flash("You are logged out everywhere." if everywhere else "You are logged out.", "success")
    return redirect(url_for("storefront.home"))
