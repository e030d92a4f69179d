"""The editorial admin: who may do what, and that every toggle is decided, logged and public."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from articles import versioning
from articles.admin import BULK_CONFIRM_THRESHOLD
from articles.models import Article, ArticleImage, ModerationEvent, RelatedListing

from .editorial_factories import PASSWORD, editor, join, many_stories, story, superuser

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def newsroom():
    lead = story("Chip maker unveils new AI accelerator", "techcrunch.com", ["AI"], published=True)
    draft = story(
        "Chip maker's accelerator, hands on", "theverge.com", ["AI"], secured="S3CRET-BLOB"
    )
    coverage = story("Accelerator benchmarks", "anandtech.com", file_backed=False)
    other = story("Robot taxis expand to a new city", "wired.com", ["Robotics"], published=True)
    join(lead, draft, coverage)
    ArticleImage.objects.create(article=draft, url="https://cdn.example/pic.jpg", width=640)
    ArticleImage.objects.create(article=draft, url="javascript:alert(1)", position=1)
    RelatedListing.objects.create(
        source=draft,
        target=coverage,
        position=0,
        title=coverage.title,
        web_url=coverage.web_url,
        images=[{"url": "https://cdn.example/listing.jpg"}],
    )
    return {"lead": lead, "draft": draft, "coverage": coverage, "other": other}


@pytest.fixture
def clients(db):
    def logged_in(user):
        client = Client()
        client.force_login(user)
        return client

    return {
        "anonymous": Client(),
        "editor": logged_in(editor()),
        "superuser": logged_in(superuser()),
    }


def admin_url(name, *args):
    return reverse(f"admin:{name}", args=args)


def changelist_post(client, action, articles, status="all", **extra):
    data = {"action": action, "index": 0, "_selected_action": [a.pk for a in articles], **extra}
    return client.post(f"{admin_url('articles_article_changelist')}?status={status}", data)


# (URL name, argument from the newsroom, expected status for editor, for superuser)
MATRIX = [
    ("index", None, 200, 200),
    ("articles_article_changelist", None, 200, 200),
    ("articles_article_change", "draft", 200, 200),
    ("articles_article_history", "draft", 200, 200),
    ("articles_article_add", None, 403, 403),
    ("articles_article_delete", "draft", 403, 200),
    ("articles_cluster_changelist", None, 200, 200),
    ("articles_cluster_change", "cluster", 200, 200),
    ("articles_cluster_add", None, 403, 403),
    ("articles_cluster_delete", "cluster", 403, 200),
    ("articles_topic_changelist", None, 200, 200),
    ("articles_topic_change", "topic", 200, 200),
    ("articles_topic_delete", "topic", 403, 200),
    ("articles_provider_changelist", None, 200, 200),
    ("articles_provider_change", "provider", 200, 200),
    ("articles_provider_delete", "provider", 403, 200),
    ("articles_moderationevent_changelist", None, 200, 200),
    ("articles_moderationevent_change", "event", 200, 200),
    ("articles_moderationevent_add", None, 403, 403),
    ("articles_moderationevent_delete", "event", 403, 403),
    ("auth_user_changelist", None, 403, 200),
    ("auth_user_add", None, 403, 200),
    ("auth_group_changelist", None, 403, 200),
]


def matrix_arguments(newsroom):
    draft = newsroom["draft"]
    event = ModerationEvent.objects.create(action=ModerationEvent.PUBLISH, article=draft)
    return {
        None: (),
        "draft": (draft.pk,),
        "cluster": (draft.cluster_id,),
        "topic": (draft.topics.get().pk,),
        "provider": (draft.provider_id,),
        "event": (event.pk,),
    }


@pytest.mark.parametrize("role", ["anonymous", "editor", "superuser"])
def test_permission_matrix_for_pages(clients, newsroom, role):
    arguments = matrix_arguments(newsroom)
    expected, actual = {}, {}
    for name, key, as_editor, as_superuser in MATRIX:
        url = admin_url(name, *arguments[key])
        response = clients[role].get(url)
        if role == "anonymous":
            expected[name] = (302, True)
            actual[name] = (
                response.status_code,
                response.get("Location", "").startswith(admin_url("login")),
            )
        else:
            expected[name] = as_editor if role == "editor" else as_superuser
            actual[name] = response.status_code
    assert actual == expected


@pytest.mark.parametrize("role", ["anonymous", "editor", "superuser"])
def test_permission_matrix_for_preview(clients, newsroom, role):
    response = clients[role].get(reverse("articles:preview", args=[newsroom["draft"].pk]))
    if role == "anonymous":
        assert response.status_code == 302
        assert response["Location"].startswith(admin_url("login"))
    else:
        assert response.status_code == 200


def test_staff_without_the_group_sees_nothing(newsroom):
    client = Client()
    client.force_login(get_user_model().objects.create_user("intern", is_staff=True))
    assert client.get(admin_url("articles_article_changelist")).status_code == 403
    assert client.get(reverse("articles:preview", args=[newsroom["draft"].pk])).status_code == 403


@pytest.mark.parametrize("role", ["anonymous", "editor", "superuser"])
@pytest.mark.parametrize(
    ("action", "story_key", "expected_published"),
    [
        ("publish_selected", "draft", True),
        ("unpublish_selected", "lead", False),
        ("hide_selected", "coverage", False),
    ],
)
def test_permission_matrix_for_moderation_actions(
    clients, newsroom, role, action, story_key, expected_published
):
    article = newsroom[story_key]
    before = article.published
    response = changelist_post(clients[role], action, [article])
    article.refresh_from_db()
    assert response.status_code == 302
    if role == "anonymous":
        assert response["Location"].startswith(admin_url("login"))
        assert article.published == before
        assert not ModerationEvent.objects.exists()
    else:
        assert article.published is expected_published
        assert article.published_decided_by.username == ("editor" if role == "editor" else "chief")
        event = ModerationEvent.objects.get(article=article)
        assert event.field == "published"


@pytest.mark.parametrize("role", ["anonymous", "editor", "superuser"])
def test_permission_matrix_for_cluster_corrections(clients, newsroom, role):
    draft, other = newsroom["draft"], newsroom["other"]
    split = clients[role].post(admin_url("articles_article_split", draft.pk), {"reason": "r"})
    merge = clients[role].post(
        admin_url("articles_cluster_changelist"),
        {
            "action": "merge_selected",
            "index": 0,
            "_selected_action": [newsroom["lead"].cluster_id, other.cluster_id],
            "confirmed": "yes",
        },
    )
    assert (split.status_code, merge.status_code) == (302, 302)
    actions = sorted(ModerationEvent.objects.values_list("action", flat=True))
    if role == "anonymous":
        assert split["Location"].startswith(admin_url("login"))
        assert merge["Location"].startswith(admin_url("login"))
        assert actions == []
    else:
        assert actions == ["merge", "split"]
        newsroom["lead"].refresh_from_db()
        other.refresh_from_db()
        assert newsroom["lead"].cluster_id == other.cluster_id


@pytest.mark.parametrize("role", ["editor", "superuser"])
def test_only_superusers_get_the_delete_action(clients, role):
    response = clients[role].get(admin_url("articles_article_changelist"))
    actions = dict(response.context["action_form"].fields["action"].choices)
    assert {"publish_selected", "unpublish_selected", "hide_selected", "split_selected"} <= set(
        actions
    )
    assert ("delete_selected" in actions) is (role == "superuser")


def test_default_view_is_the_review_queue_newest_first(clients, newsroom):
    older = story("An older draft", "example.org")
    response = clients["editor"].get(admin_url("articles_article_changelist"))
    shown = [article.pk for article in response.context["cl"].result_list]
    assert shown == [newsroom["draft"].pk, older.pk]
    everything = clients["editor"].get(admin_url("articles_article_changelist") + "?status=all")
    assert len(everything.context["cl"].result_list) == Article.objects.count()
    hidden = clients["editor"].get(admin_url("articles_article_changelist") + "?status=hidden")
    assert list(hidden.context["cl"].result_list) == []


def test_unknown_status_is_a_message_not_an_error(clients):
    response = clients["editor"].get(admin_url("articles_article_changelist") + "?status=nope")
    assert response.status_code == 302
    assert "e=1" in response["Location"]


def test_list_editable_toggle_is_decided_logged_and_public(clients, newsroom):
    draft = newsroom["draft"]
    version = versioning.current().version
    response = clients["editor"].post(
        admin_url("articles_article_changelist"),
        {
            "form-TOTAL_FORMS": 1,
            "form-INITIAL_FORMS": 1,
            "form-0-id": draft.pk,
            "form-0-published": "true",
            "_save": "Save",
        },
    )
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.published is True
    assert draft.published_decided_by.username == "editor"
    assert draft.published_decided_at is not None
    event = ModerationEvent.objects.get(article=draft)
    assert (event.action, event.old_value, event.new_value) == (
        "publish",
        "unpublished",
        "published",
    )
    assert versioning.current().version > version


def test_list_editable_decides_the_file_value_too(clients, newsroom):
    """An undecided story shows as undecided; choosing the file's own value is a decision."""
    draft = newsroom["draft"]
    url = admin_url("articles_article_changelist")
    page = clients["editor"].get(url).content.decode()
    assert '<option value="unknown" selected>Undecided (unpublished)</option>' in page
    response = clients["editor"].post(
        url,
        {
            "form-TOTAL_FORMS": 1,
            "form-INITIAL_FORMS": 1,
            "form-0-id": draft.pk,
            "form-0-published": "false",
            "_save": "Save",
        },
    )
    assert response.status_code == 302
    draft.refresh_from_db()
    assert (draft.published, draft.published_decided_by.username) == (False, "editor")
    assert not Article.objects.awaiting_review().exists()
    assert ModerationEvent.objects.get().action == "unpublish"


def test_list_editable_refuses_going_back_to_undecided(clients, newsroom):
    lead = newsroom["lead"]
    changelist_post(clients["editor"], "publish_selected", [lead])
    logged = ModerationEvent.objects.count()
    response = clients["editor"].post(
        admin_url("articles_article_changelist") + "?status=all",
        {
            "form-TOTAL_FORMS": 1,
            "form-INITIAL_FORMS": 1,
            "form-0-id": lead.pk,
            "form-0-published": "unknown",
            "_save": "Save",
        },
    )
    assert response.status_code == 200
    assert "cannot go back to undecided" in response.content.decode()
    lead.refresh_from_db()
    assert lead.published is True
    assert ModerationEvent.objects.count() == logged


def test_change_form_saves_only_published_with_a_reason(clients, newsroom):
    draft = newsroom["draft"]
    response = clients["editor"].post(
        admin_url("articles_article_change", draft.pk),
        {
            "published": "true",
            "reason": "checked with the outlet",
            "title": "Edited title",
            "secured": "tampered",
            **inline_management(),
        },
    )
    assert response.status_code == 302, response.context and response.context["errors"]
    draft.refresh_from_db()
    assert draft.published is True
    assert draft.title == "Chip maker's accelerator, hands on"
    assert draft.secured == "S3CRET-BLOB"
    assert ModerationEvent.objects.get(article=draft).reason == "checked with the outlet"


def inline_management():
    data = {}
    for prefix in ["images", "listings", "moderation_events"]:
        data.update({f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0})
    return data


def test_change_page_shows_inlines_and_never_the_secured_blob(clients, newsroom):
    draft = newsroom["draft"]
    changelist = clients["editor"].get(admin_url("articles_article_changelist")).content.decode()
    page = clients["editor"].get(admin_url("articles_article_change", draft.pk)).content.decode()
    assert "S3CRET-BLOB" not in changelist
    assert "S3CRET-BLOB" not in page
    assert '<img src="https://cdn.example/pic.jpg"' in page
    assert '<img src="https://cdn.example/listing.jpg"' in page
    assert 'src="javascript:' not in page
    assert 'href="javascript:' not in page
    assert 'name="title"' not in page
    assert reverse("articles:preview", args=[draft.pk]) in page


def test_csrf_is_enforced_on_actions(newsroom):
    client = Client(enforce_csrf_checks=True)
    client.force_login(editor())
    draft = newsroom["draft"]
    assert changelist_post(client, "publish_selected", [draft]).status_code == 403
    draft.refresh_from_db()
    assert draft.published is False
    client.get(admin_url("articles_article_changelist"))
    token = client.cookies["csrftoken"].value
    response = changelist_post(client, "publish_selected", [draft], csrfmiddlewaretoken=token)
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.published is True


def test_csrf_is_enforced_on_split(newsroom):
    client = Client(enforce_csrf_checks=True)
    client.force_login(editor())
    response = client.post(admin_url("articles_article_split", newsroom["draft"].pk))
    assert response.status_code == 403


def test_bulk_actions_over_the_threshold_ask_first(clients):
    drafts = many_stories(BULK_CONFIRM_THRESHOLD + 1, "Draft")
    response = changelist_post(clients["editor"], "publish_selected", drafts, status="review")
    assert response.status_code == 200
    assert "Are you sure" in response.content.decode()
    assert not Article.objects.filter(published=True).exists()
    confirmed = changelist_post(
        clients["editor"],
        "publish_selected",
        drafts,
        status="review",
        confirmed="yes",
        reason="batch from the wire",
    )
    assert confirmed.status_code == 302
    assert Article.objects.filter(published=True).count() == len(drafts)
    assert ModerationEvent.objects.filter(reason="batch from the wire").count() == len(drafts)


def test_bulk_select_across_confirms_then_applies_to_the_filtered_rows(clients, newsroom):
    many_stories(BULK_CONFIRM_THRESHOLD + 1, "Wire draft")
    url = admin_url("articles_article_changelist") + "?status=review&q=wire"
    data = {"action": "unpublish_selected", "index": 0, "select_across": 1, "_selected_action": []}
    data["_selected_action"] = list(
        Article.objects.filter(title__startswith="Wire").values_list("pk", flat=True)[:1]
    )
    assert clients["editor"].post(url, data).status_code == 200
    response = clients["editor"].post(url, {**data, "confirmed": "yes"})
    assert response.status_code == 302
    decided = Article.objects.filter(published_decided_at__isnull=False)
    assert decided.count() == BULK_CONFIRM_THRESHOLD + 1
    assert not decided.exclude(title__startswith="Wire").exists()


def test_hide_applies_only_to_related_only_stories(clients, newsroom):
    changelist_post(clients["editor"], "hide_selected", [newsroom["coverage"], newsroom["lead"]])
    assert list(ModerationEvent.objects.values_list("article", "action")) == [
        (newsroom["coverage"].pk, "hide")
    ]
    newsroom["lead"].refresh_from_db()
    assert newsroom["lead"].published is True


def test_description_edit_is_logged(clients, newsroom):
    topic = newsroom["draft"].topics.get()
    response = clients["editor"].post(
        admin_url("articles_topic_change", topic.pk),
        {"description": "Machines that learn.", "reason": "was empty", "name": "Hijacked"},
    )
    assert response.status_code == 302
    topic.refresh_from_db()
    assert (topic.description, topic.name) == ("Machines that learn.", "AI")
    event = ModerationEvent.objects.get(topic=topic)
    assert (event.action, event.new_value, event.reason) == (
        "edit_description",
        "Machines that learn.",
        "was empty",
    )


def test_moderation_log_is_read_only_for_everyone(clients, newsroom):
    changelist_post(clients["editor"], "publish_selected", [newsroom["draft"]])
    event = ModerationEvent.objects.get()
    response = clients["superuser"].post(
        admin_url("articles_moderationevent_change", event.pk), {"reason": "rewritten"}
    )
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.reason == ""
    log = clients["editor"].get(admin_url("articles_moderationevent_changelist")).content.decode()
    assert newsroom["draft"].title.replace("'", "&#x27;") in log


def test_story_and_cluster_pages_show_their_log(clients, newsroom):
    draft = newsroom["draft"]
    changelist_post(clients["editor"], "publish_selected", [draft], reason="verified")
    story_page = clients["editor"].get(admin_url("articles_article_change", draft.pk))
    cluster_page = clients["editor"].get(admin_url("articles_cluster_change", draft.cluster_id))
    for page in (story_page, cluster_page):
        html = page.content.decode()
        assert "moderation log" in html.lower()
        assert "verified" in html


def test_cluster_change_page_lists_members(clients, newsroom):
    page = clients["editor"].get(admin_url("articles_cluster_change", newsroom["lead"].cluster_id))
    html = page.content.decode()
    for key in ("lead", "draft", "coverage"):
        assert admin_url("articles_article_change", newsroom[key].pk) in html
    assert newsroom["other"].title not in html
    assert 'name="_save"' not in html


def test_changelist_query_count_does_not_grow_with_rows(clients, django_assert_max_num_queries):
    many_stories(3, "First batch", topics=["AI", "Chips"])
    url = admin_url("articles_article_changelist") + "?status=all"
    with django_assert_max_num_queries(16) as small:
        clients["editor"].get(url)
    many_stories(30, "Second batch", topics=["AI", "Chips"])
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = clients["editor"].get(url)
    assert len(response.context["cl"].result_list) == 33


def test_change_pages_run_a_bounded_number_of_queries(
    clients, newsroom, django_assert_max_num_queries
):
    draft = newsroom["draft"]
    extras = many_stories(10, "Extra coverage", file_backed=False)
    for n, extra in enumerate(extras):
        ArticleImage.objects.create(
            article=draft, url=f"https://cdn.example/{n}.jpg", position=n + 2
        )
        RelatedListing.objects.create(
            source=draft, target=extra, position=n + 1, title=extra.title, web_url=extra.web_url
        )
    join(newsroom["lead"], *extras)
    with django_assert_max_num_queries(24):
        clients["editor"].get(admin_url("articles_article_change", draft.pk))
    with django_assert_max_num_queries(20):
        clients["editor"].get(admin_url("articles_cluster_change", draft.cluster_id))
    with django_assert_max_num_queries(14):
        clients["editor"].get(admin_url("articles_cluster_changelist"))


def test_editors_group_from_the_migration():
    perms = set(Group.objects.get(name="Editors").permissions.values_list("codename", flat=True))
    assert {"change_article", "change_cluster", "change_topic", "view_moderationevent"} <= perms
    assert not {p for p in perms if p.startswith(("delete_", "add_"))}
    assert "change_moderationevent" not in perms
    assert (
        not Group.objects.get(name="Editors")
        .permissions.exclude(content_type__app_label="articles")
        .exists()
    )


def test_create_editor_without_input(monkeypatch):
    monkeypatch.setenv("EDITOR_PASSWORD", PASSWORD)
    out = StringIO()
    call_command("create_editor", "ada", "--noinput", "--email", "ada@example.org", stdout=out)
    user = get_user_model().objects.get(username="ada")
    assert user.is_staff and not user.is_superuser
    assert user.check_password(PASSWORD)
    assert list(user.groups.values_list("name", flat=True)) == ["Editors"]
    assert user.has_perm("articles.change_article")
    assert not user.has_perm("articles.delete_article")
    assert "ada" in out.getvalue()


def test_create_editor_prompts_for_the_password(monkeypatch):
    answers = iter([PASSWORD, PASSWORD])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    call_command("create_editor", "grace", stdout=StringIO())
    assert get_user_model().objects.get(username="grace").check_password(PASSWORD)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "Set $EDITOR_PASSWORD"),
        ({"EDITOR_PASSWORD": "password"}, "Password refused"),
    ],
)
def test_create_editor_refuses_clearly(monkeypatch, env, message):
    monkeypatch.delenv("EDITOR_PASSWORD", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(CommandError, match=message.replace("$", r"\$")):
        call_command("create_editor", "linus", "--noinput")
    assert not get_user_model().objects.filter(username="linus").exists()


def test_create_editor_refuses_an_existing_user(monkeypatch):
    monkeypatch.setenv("EDITOR_PASSWORD", PASSWORD)
    editor("taken")
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_editor", "taken", "--noinput")


def test_login_page_works_for_a_new_editor(monkeypatch):
    monkeypatch.setenv("EDITOR_PASSWORD", PASSWORD)
    call_command("create_editor", "margaret", "--noinput", stdout=StringIO())
    client = Client()
    response = client.post(
        admin_url("login"),
        {"username": "margaret", "password": PASSWORD, "next": admin_url("index")},
    )
    assert response.status_code == 302
    assert client.get(admin_url("articles_article_changelist")).status_code == 200


def test_split_is_offered_only_to_a_story_with_company(clients, newsroom):
    def page(article):
        url = admin_url("articles_article_change", article.pk)
        return clients["editor"].get(url).content.decode()

    assert "Split out into its own cluster" in page(newsroom["draft"])
    assert "Split out into its own cluster" not in page(newsroom["other"])


@pytest.mark.parametrize("role", ["anonymous", "editor", "superuser"])
def test_hide_button_on_the_cluster_page(clients, newsroom, role):
    coverage, lead = newsroom["coverage"], newsroom["lead"]
    here = admin_url("articles_cluster_change", lead.cluster_id)
    hide_url = admin_url("articles_article_hide", coverage.pk)
    if role != "anonymous":
        page = clients[role].get(here).content.decode()
        assert f'formaction="{hide_url}"' in page
        assert admin_url("articles_article_hide", lead.pk) not in page  # file-backed: unpublish
    response = clients[role].post(hide_url, {"next": here, "reason": "camera review"})
    assert response.status_code == 302
    coverage.refresh_from_db()
    if role == "anonymous":
        assert response["Location"].startswith(admin_url("login"))
        assert coverage.published is None
    else:
        assert response["Location"] == here
        assert coverage.published is False
        event = ModerationEvent.objects.get()
        assert (event.action, event.reason) == ("hide", "camera review")


def test_story_buttons_ignore_offsite_next_and_get(clients, newsroom):
    coverage = newsroom["coverage"]
    hide_url = admin_url("articles_article_hide", coverage.pk)
    assert clients["editor"].get(hide_url).status_code == 302
    assert not ModerationEvent.objects.exists()
    response = clients["editor"].post(hide_url, {"next": "https://evil.example/"})
    assert response["Location"] == admin_url("articles_article_change", coverage.pk)
