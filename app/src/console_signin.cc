// Signing in, signing up and signing out.
#include <spdlog/spdlog.h>

#include "console_common.h"

namespace flovyn::app {

namespace {
std::string SignInForm(const std::string& csrf, const std::string& email) {
  return Render("sign_in", {{"csrf", csrf}, {"email", email}});
}

std::string SignUpForm(const std::string& csrf, const std::map<std::string, std::string>& f) {
  return Render("sign_up", {{"csrf", csrf},
                            {"name", Field(f, "name")},
                            {"email", Field(f, "email")},
                            {"organization", Field(f, "organization")},
                            {"slug", Field(f, "slug")}});
}
}  // namespace

Response ConsoleModule::SignInPage(const Request&, Visit& v) {
  return Html(200, Layout(v.Frame("Sign in", ""), SignInForm(v.csrf, "")));
}

Response ConsoleModule::SignIn(const Request& req, Visit& v) {
  std::string email = Field(v.form, "email");
  std::string password = v.form.count("password") ? v.form.at("password") : "";
  auto fr = v.Frame("Sign in", "");
  if (email.empty() || password.empty()) {
    fr.error = "Enter your email and password.";
    return Html(400, Layout(fr, SignInForm(v.csrf, email)));
  }
  auto r = identity_->SignIn(email, password, ClientAddress(req));
  if (!r.ok()) {
    fr.error = r.status().code() == StatusCode::kUnavailable ? "The console's database cannot be reached; try again."
                                                             : r.status().message();
    Response res = Html(HttpFor(r.status()), Layout(fr, SignInForm(v.csrf, email)));
    if (r.status().code() == StatusCode::kResourceExhausted) {
      const std::string& m = r.status().message();
      auto in = m.rfind(" in ");
      if (in != std::string::npos) res.With("Retry-After", m.substr(in + 4, m.find(' ', in + 4) - in - 4));
    }
    return res;
  }
  v.set_cookies.push_back(SessionCookie(req, r->first, settings_.session_ttl_hours * 3600));
  return Redirect("/overview");
}

Response ConsoleModule::SignUpPage(const Request&, Visit& v) {
  return Html(200, Layout(v.Frame("Create your account", ""), SignUpForm(v.csrf, {})));
}

Response ConsoleModule::SignUp(const Request& req, Visit& v) {
  std::string name = Field(v.form, "name"), email = Field(v.form, "email"), org = Field(v.form, "organization");
  std::string password = v.form.count("password") ? v.form.at("password") : "";
  std::string slug = Field(v.form, "slug");
  if (slug.empty()) slug = SlugFrom(org);
  std::string problem;
  if (name.empty() || name.size() > 200)
    problem = "Enter your name (up to 200 characters).";
  else if (email.size() > 320 || email.find('@') == std::string::npos ||
           email.find_first_of(" <>\"") != std::string::npos)
    problem = "Enter a valid email address.";
  else if (auto weak = PasswordProblem(password, email); !weak.empty())
    problem = weak;
  else if (org.empty() || org.size() > 200)
    problem = "Name your organisation (up to 200 characters).";
  else if (!ValidSlug(slug))
    problem = "The organisation slug must be 3 to 40 lower-case letters, digits or dashes.";
  auto fr = v.Frame("Create your account", "");
  if (!problem.empty()) {
    fr.error = problem;
    return Html(400, Layout(fr, SignUpForm(v.csrf, v.form)));
  }
  // The organisation's tenant is created on the server inside the sign-up's transaction, owned by
  // the new organisation's id: a slug taken there, or a server that cannot be reached, creates
  // nothing here either.
  auto r = identity_->SignUp(email, name, password, org, slug,
                             [this](const Session& s) { return backend_->CreateTenant(s); });
  if (!r.ok()) {
    switch (r.status().code()) {
      case StatusCode::kAlreadyExists:
      case StatusCode::kResourceExhausted:
        fr.error = r.status().message();
        break;
      case StatusCode::kUnavailable:
      case StatusCode::kDeadlineExceeded:
        fr.error = "The Flovyn server cannot be reached; try again in a moment.";
        break;
      default:
        fr.error = "Your account could not be created; try again.";
    }
    Response res = Html(HttpFor(r.status()), Layout(fr, SignUpForm(v.csrf, v.form)));
    if (r.status().code() == StatusCode::kResourceExhausted) res.With("Retry-After", "1");
    return res;
  }
  v.set_cookies.push_back(SessionCookie(req, r->first, settings_.session_ttl_hours * 3600));
  return Redirect("/overview");
}

Response ConsoleModule::SignOut(const Request& req, Visit& v) {
  Status s = identity_->EndSession(CookieValue(req, kSessionCookie));
  if (!s.ok()) return Refusal(503, "Temporarily unavailable", "Signing out failed; try again.");
  v.set_cookies.push_back(SessionCookie(req, "", 0));
  return Redirect("/sign-in");
}

}  // namespace flovyn::app
