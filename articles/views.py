from django.shortcuts import get_object_or_404, render

from .models import Article, Cluster, Provider, Topic


def home(request):
    clusters = Cluster.objects.public().latest().select_related("lead", "lead__provider")[:20]
    return render(request, "articles/home.html", {"clusters": clusters})


def topic_detail(request, slug):
    topic = get_object_or_404(Topic, slug=slug)
    clusters = (
        Cluster.objects.public()
        .filter(clustertopic__topic=topic)
        .latest()
        .select_related("lead", "lead__provider")[:20]
    )
    return render(request, "articles/topic.html", {"topic": topic, "clusters": clusters})


def cluster_detail(request, slug):
    cluster = get_object_or_404(Cluster.objects.public().select_related("lead"), slug=slug)
    coverage = (
        Article.objects.coverage_visible().filter(cluster=cluster).exclude(pk=cluster.lead_id)
    )
    return render(request, "articles/cluster.html", {"cluster": cluster, "coverage": coverage})


def provider_detail(request, domain):
    provider = get_object_or_404(Provider, domain=domain)
    stories = Article.objects.published().filter(provider=provider)[:50]
    return render(request, "articles/provider.html", {"provider": provider, "stories": stories})
