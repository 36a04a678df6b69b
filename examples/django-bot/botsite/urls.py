from django.urls import path
from replies.views import webhook

urlpatterns = [path("webhook/", webhook)]
