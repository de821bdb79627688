"""Locust users of the case loop: chiefs listing and handling, clerks taking cases in, dispatchers dispatching.

Run by ``bench/cases.py --locust`` (it serves the bench database on 127.0.0.1
and runs locust headless); by hand::

    locust -f bench/locustfile.py --headless -u 50 -r 10 -t 2m --host http://127.0.0.1:5055

Every simulated person signs in through the login form (the demo accounts,
password ``gisgrid-demo``) and sends the CSRF token as the pages do.  A step
that loses a race with another simulated person (409: the case changed
meanwhile, or its state moved on) is the workflow working, and is counted as
a success; any other answer >= 400 is a failure.
"""

from __future__ import annotations

import io
import os
import random
import re
import uuid

from locust import HttpUser, between, task

PASSWORD = "gisgrid-demo"
CASE_ROW = re.compile(r'data-case="(\d+)"')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')
#: Where clerks' cases land: around the 段长 demo account's segment (bench/cases.py sets GISGRID_BENCH_CENTRE).
_centre = os.environ.get("GISGRID_BENCH_CENTRE", "116.35,40.0").split(",")
CENTRE = {"lon": float(_centre[0]), "lat": float(_centre[1])}


def _jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (random.randint(0, 255), 120, 90)).save(buf, "JPEG")
    return buf.getvalue()


class _Person(HttpUser):
    abstract = True
    wait_time = between(0.5, 2.0)
    username = ""

    def on_start(self):
        page = self.client.get("/auth/login", name="/auth/login").text
        found = CSRF_FIELD.search(page)
        token = found.group(1) or found.group(2)
        self.client.post(
            "/auth/login", data={"username": self.username, "password": PASSWORD, "csrf_token": token}, name="login"
        )
        home = self.client.get("/cases", name="/cases").text
        self.csrf = CSRF_META.search(home).group(1)

    def _json_step(self, case_id: str, action: str, **fields):
        case = self.client.get(f"/api/cases/{case_id}", name="/api/cases/[id]").json()
        if case.get("status") not in ("reported", "accepted", "returned"):
            return  # another dispatcher took it meanwhile
        with self.client.post(
            f"/api/cases/{case_id}/{action}",
            json={"version": case["version"], **fields},
            headers={"X-CSRFToken": self.csrf},
            name=f"/api/cases/[id]/{action}",
            catch_response=True,
        ) as res:
            if res.status_code == 409:  # another simulated person was first: the workflow working
                res.success()


class Chief(_Person):
    weight = 3
    username = "duanzhang"

    @task(5)
    def my_cases(self):
        page = self.client.get("/cases?view=mine", name="/cases?view=mine").text
        ids = CASE_ROW.findall(page)
        if ids:
            self.client.get(f"/cases/{random.choice(ids)}", name="/cases/[id]")

    @task(1)
    def handle(self):
        ids = CASE_ROW.findall(self.client.get("/cases?view=mine&status=dispatched", name="/cases?view=mine").text)
        if not ids:
            return
        case_id = random.choice(ids)
        case = self.client.get(f"/api/cases/{case_id}", name="/api/cases/[id]").json()
        with self.client.post(
            f"/cases/{case_id}/step",
            data={"action": "handle", "version": case["version"], "note": "已处置（压测）", "csrf_token": self.csrf},
            files={"photos": ("after.jpg", _jpeg(), "image/jpeg")},
            name="/cases/[id]/step handle",
            catch_response=True,
            allow_redirects=False,
        ) as res:
            if res.status_code in (303, 409):
                res.success()


class Clerk(_Person):
    weight = 2
    username = "clerk"

    @task
    def take_in(self):
        body = {
            "lon": CENTRE["lon"] + random.uniform(-0.01, 0.01),
            "lat": CENTRE["lat"] + random.uniform(-0.01, 0.01),
            "crs": "EPSG:4326",
            "category": random.choice(["0101", "0201", "0501", "1101"]),
            "description": "压测上报",
            "client_id": str(uuid.uuid4()),
        }
        self.client.post("/api/cases", json=body, headers={"X-CSRFToken": self.csrf}, name="/api/cases")


class Dispatcher(_Person):
    weight = 1
    username = "dispatcher"

    @task
    def dispatch(self):
        page = self.client.get("/cases?view=queue&status=reported", name="/cases?view=queue").text
        ids = CASE_ROW.findall(page)
        if not ids:
            return
        case_id = random.choice(ids[:20])
        self._json_step(case_id, "accept")
        case = self.client.get(f"/api/cases/{case_id}", name="/api/cases/[id]").json()
        if case.get("assignee_person_id") or case.get("assignee_department_id"):
            self._json_step(case_id, "dispatch")  # to the routed owner
