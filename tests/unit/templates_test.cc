// The Mustache page templates: escaping by default, partials, and the console's own set.
#include "flovyn/http/templates.h"

#include <gtest/gtest.h>

#include "identity.h"
#include "pages.h"

namespace flovyn {
namespace {

using nlohmann::json;

http::Templates Build(std::map<std::string, std::string> sources) {
  auto built = http::Templates::Build(std::move(sources));
  EXPECT_TRUE(built.ok()) << built.status().message();
  return std::move(*built);
}

TEST(TemplatesTest, ValuesAreEscapedUnlessTheTemplateSaysOtherwise) {
  auto t = Build({{"p", "<p title=\"{{v}}\">{{v}}</p>{{{raw}}}"}});
  EXPECT_EQ(t.Render("p", {{"v", "<script>\"x\" & 'y'"}, {"raw", "<b>ok</b>"}}),
            "<p title=\"&lt;script&gt;&quot;x&quot; &amp; &apos;y&apos;\">&lt;script&gt;&quot;x&quot; &amp; "
            "&apos;y&apos;</p><b>ok</b>");
}

TEST(TemplatesTest, SectionsRepeatHideAndScope) {
  auto t = Build({{"p",
                   "{{#items}}[{{name}}:{{n}}{{#on}}!{{/on}}]{{/items}}{{^items}}none{{/items}}"
                   "{{#empty}}E{{/empty}}{{#missing}}M{{/missing}}{{#nil}}N{{/nil}}"}});
  json view = {{"items", {{{"name", "a"}, {"n", 1}, {"on", true}}, {{"name", "b"}, {"n", 2.5}, {"on", false}}}},
               {"empty", ""},
               {"nil", nullptr}};
  EXPECT_EQ(t.Render("p", view), "[a:1!][b:2.5]");
  EXPECT_EQ(t.Render("p", {{"items", json::array()}}), "none");
}

TEST(TemplatesTest, PartialsComeFromTheTemplatesNeverFromTheView) {
  auto t = Build({{"page", "<{{> item}}>"}, {"item", "{{name}}"}});
  // A view key named like a partial does not replace it, so a value can never become markup.
  EXPECT_EQ(t.Render("page", {{"name", "<i>"}, {"item", "{{{name}}}"}}), "<&lt;i&gt;>");
}

TEST(TemplatesTest, ATemplateThatDoesNotParseIsRefusedByName) {
  auto built = http::Templates::Build({{"good", "{{a}}"}, {"broken", "{{#open}} never closed"}});
  ASSERT_FALSE(built.ok());
  EXPECT_EQ(built.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(built.status().message().find("'broken'"), std::string::npos) << built.status().message();
}

TEST(TemplatesTest, UnknownTemplateAborts) {
  auto t = Build({{"a", "x"}});
  EXPECT_DEATH(t.Render("b", json::object()), "no template named 'b'");
}

TEST(ConsoleTemplatesTest, EveryPageTemplateParsesAndTheFrameEscapes) {
  for (const char* name :
       {"layout", "csrf", "badge", "json", "pager", "status_options", "message", "workflow_rows", "overview",
        "workflows", "workflow", "tasks", "workers", "credentials", "sign_in", "sign_up"}) {
    EXPECT_TRUE(app::Views().Has(name)) << name;
  }
  app::Session s;
  s.org.name = "Acme <Ltd>";
  s.user.email = "a@b.c";
  s.csrf_token = "tok\"en";
  app::Frame f;
  f.title = "<script>alert(1)</script>";
  f.session = &s;
  f.nav = "tasks";
  f.error = "bad & worse";
  std::string page = app::Layout(f, "<h1>body</h1>");
  EXPECT_NE(page.find("<title>&lt;script&gt;alert(1)&lt;/script&gt; · Flovyn</title>"), std::string::npos) << page;
  EXPECT_EQ(page.find("<script>alert"), std::string::npos);
  EXPECT_NE(page.find("<span class=\"org\">Acme &lt;Ltd&gt;</span>"), std::string::npos);
  EXPECT_NE(page.find("value=\"tok&quot;en\""), std::string::npos);
  EXPECT_NE(page.find("<a href=\"/tasks\" class=\"active\" aria-current=\"page\">Tasks</a>"), std::string::npos);
  EXPECT_NE(page.find("<a href=\"/workers\">Workers</a>"), std::string::npos);
  EXPECT_NE(page.find("<div class=\"alert error\" role=\"alert\">bad &amp; worse</div>"), std::string::npos);
  EXPECT_EQ(page.find("alert ok"), std::string::npos) << "no notice, no box";
  EXPECT_NE(page.find("<h1>body</h1>"), std::string::npos);
}

TEST(ConsoleTemplatesTest, AWorkflowPageEscapesWhatTheServerReturns) {
  json badge = app::Badge("TIMED_OUT");
  EXPECT_EQ(badge["badgeClass"], "timed-out");
  json wf = app::Badge("RUNNING");
  wf.update({{"id", "e1"},
             {"kind", "<img src=x onerror=alert(1)>"},
             {"queue", "q"},
             {"createdAt", ""},
             {"updatedAt", ""},
             {"parentId", ""},
             {"input", app::JsonView({{"k", "</pre><script>"}})},
             {"output", app::JsonView(nullptr)},
             {"error", ""},
             {"open", true},
             {"pendingPromises", json::array({{{"promiseId", "p1"}, {"name", "approve"}}})}});
  std::string h = app::Render("workflow", {{"workflow", wf}, {"events", json::array()}, {"csrf", "c"}});
  EXPECT_EQ(h.find("<img"), std::string::npos) << h;
  EXPECT_EQ(h.find("</pre><script>"), std::string::npos) << h;
  EXPECT_NE(h.find("<span class=\"badge running\">RUNNING</span>"), std::string::npos) << h;
  EXPECT_NE(h.find("<span class=\"muted\">—</span>"), std::string::npos) << "null output shows a dash";
  EXPECT_NE(h.find("action=\"/workflows/e1/promises/p1\""), std::string::npos) << h;
  EXPECT_NE(h.find("action=\"/workflows/e1/cancel\""), std::string::npos) << h;
  EXPECT_EQ(h.find("<dt>Parent</dt>"), std::string::npos) << "no parent, no row";
}

}  // namespace
}  // namespace flovyn
