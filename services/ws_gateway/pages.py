"""The web UI's pages: login, the room list, a chat room and the staff dashboard (plain
templates and JS), and the collab documents list and editor (the editor is a bundle
built from web/collab).

A page is read with GET or HEAD (require_safe); only the login form is posted, and
logout is a POST (with the CSRF token). Any other method is 405, whoever asks
(tests-e2e/faults/authz_table.py)."""

from __future__ import annotations

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from ws_gateway import clientip, throttle


@require_http_methods(["GET", "HEAD", "POST"])
def login_view(request):
    error = ""
    next_url = request.GET.get("next") or request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = "/"
    if request.method == "POST":
        username, ip = request.POST.get("username", ""), clientip.of_request(request)
        wait = throttle.check(username, ip)
        if wait:
            error = f"Too many failed logins. Try again in {wait} seconds."
            response = render(request, "ws_gateway/login.html", {"error": error, "next": next_url}, status=429)
            response["Retry-After"] = str(wait)
            return response
        user = authenticate(request, username=username, password=request.POST.get("password", ""))
        if user is not None and user.is_active:
            login(request, user)
            return redirect(next_url)
        throttle.failed(username, ip)
        error = "Wrong username or password."
    return render(request, "ws_gateway/login.html", {"error": error, "next": next_url})


@require_POST  # a GET would let any page log the user out (an <img src="/logout/">)
def logout_view(request):
    logout(request)
    return redirect("/login/")


@require_safe
@login_required
def rooms(request):
    return render(request, "ws_gateway/rooms.html", {})


@require_safe
@login_required
def chat(request, room: str):
    return render(request, "ws_gateway/chat.html", {"room": room})


@require_safe
@login_required
def collab_documents(request):
    return render(request, "ws_gateway/collab_documents.html", {})


# CodeMirror 6 writes style attributes (tab-size on .cm-content, y-codemirror's remote
# caret and selection colours), which style-src 'self' blocks; on this page only, inline
# styles are allowed. Scripts stay 'self' only: a style cannot run code.
@csp_update({"style-src": [UNSAFE_INLINE]})
@require_safe
@login_required
def collab_editor(request, doc: int):
    return render(request, "ws_gateway/collab_editor.html", {"doc": doc})


@require_safe
@login_required
def dashboard(request):
    """The live staff dashboard (its socket, /ws/dashboard/, is staff-only too)."""
    if not request.user.is_staff:
        return render(request, "ws_gateway/forbidden.html", {"what": "The dashboard is for staff."}, status=403)
    return render(request, "ws_gateway/dashboard.html", {})


@require_safe
@login_required
def reports(request):
    """Request reports and watch their progress live (/ws/tasks/)."""
    return render(request, "ws_gateway/reports.html", {})
