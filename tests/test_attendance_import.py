"""The attendance import: `portal attendance import FILE` on a small file and on the real one."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from plugins.attendance.importer import parse
from plugins.attendance.models import AttendanceSource, MeetingAttendance
from portal.audit import AuditEntry
from portal.config import ROOT
from portal.events.models import Event, EventFormat, EventStatus
from tests import factories as f

REAL_FILE = ROOT / "plugins/attendance/data/study_group_attendance.csv"
HEADER = "meeting_no,date,registered,participants,company,university,government_other,format,note"

SMALL = "\n".join(
    [
        HEADER,
        "1,2002-09-20,47,43,19,23,1,onsite,",  # line 2: fine
        "2,2002-11-15,48,33,16,16,2,onsite,",  # line 3: 16+16+2 = 34, not 33
        "3,2003-13-10,49,35,16,16,3,onsite,",  # line 4: no 13th month
        "4,2003-03-19,50,-5,17,16,2,onsite,",  # line 5: negative participants
        "5,2003-05-27,58,45,21,21,3,zoom,",  # line 6: unknown format
        "6,2020-03-06,60,0,0,0,0,cancelled,cancelled because of COVID-19",  # line 7
        "7,2020-07-17,70,60,40,10,10,online,webinar",  # line 8
    ]
)


def _study_group(session):
    return f.series(session, slug="study-group")


def _rows(session):
    return {
        event.number: row
        for row, event in session.execute(
            sa.select(MeetingAttendance, Event).join(Event).order_by(Event.number)
        )
    }


def test_parse_checks_every_row():
    rows, invalid = parse(SMALL)
    assert [r.number for r in rows] == [1, 2, 6, 7]
    assert [(r.line, r.reason) for r in invalid] == [
        (4, "date: '2003-13-10' is not a valid date (YYYY-MM-DD)"),
        (5, "participants: '-5' is not a whole number of 0 or more"),
        (6, "format: 'zoom' is not one of onsite, online, hybrid, cancelled"),
    ]
    assert rows[1].figures.adds_up is False
    assert rows[1].figures.breakdown_total == 34


def test_parse_reports_missing_values_duplicates_and_extra_values():
    text = "\n".join(
        [
            HEADER,
            "1,2002-09-20,47,43,19,23,1,onsite,",
            "1,2002-09-21,47,43,19,23,1,onsite,",
            "2,,47,,19,23,1,hybrid,",
            "3,2002-09-22,1,857,2,0,0,0,0,onsite,",
            "x,2002/09/23,1,0,0,0,0,HYBRID,",
        ]
    )
    rows, invalid = parse(text)
    assert [r.number for r in rows] == [1]
    assert [(r.line, r.reason) for r in invalid] == [
        (3, "meeting 1 appears again (first on line 2)"),
        (4, "date is missing; participants is missing"),
        (
            5,
            "more values than columns; format: '0' is not one of onsite, online, hybrid, cancelled",
        ),
        (6, "meeting_no: 'x' is not a whole number of 1 or more"),
    ]


def test_hook_cli_commands_attendance_import_small_file(app, runner, session, tmp_path):
    series = _study_group(session)
    existing = f.event(
        session,
        series,
        number=1,
        slug="study-group-1",
        starts_at=f.at(2002, 9, 20, 5, 30),
        status=EventStatus.closed,
    )
    session.commit()
    path = tmp_path / "attendance.csv"
    path.write_text(SMALL, encoding="utf-8")

    result = runner.invoke(args=["attendance", "import", str(path)])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"Read 4 valid row(s) from {path}.",
        "Meetings created: 3.",
        "Attendance: 4 created, 0 changed, 0 unchanged.",
        "Breakdown does not add up to the participants (kept as given):",
        "  line 3, meeting 2: participants 33, company + university + government/other = 34",
        "Invalid rows (skipped): 3",
        "  line 4: date: '2003-13-10' is not a valid date (YYYY-MM-DD)",
        "  line 5: participants: '-5' is not a whole number of 0 or more",
        "  line 6: format: 'zoom' is not one of onsite, online, hybrid, cancelled",
    ]
    session.expire_all()
    rows = _rows(session)
    assert sorted(rows) == [1, 2, 6, 7]
    assert rows[1].event_id == existing.id
    kept = rows[2]
    assert (kept.participants, kept.company, kept.university, kept.government_other) == (
        33,
        16,
        16,
        2,
    )
    assert (kept.onsite_participants, kept.online_participants) == (33, 0)
    assert rows[6].cancelled is True
    assert rows[6].note == "cancelled because of COVID-19"
    assert (rows[7].online_participants, rows[7].onsite_participants) == (60, 0)
    assert all(r.source == AttendanceSource.import_ for r in rows.values())
    assert all(r.imported_at is not None for r in rows.values())

    created = {e.number: e for e in session.scalars(sa.select(Event).where(Event.number > 1))}
    assert sorted(created) == [2, 6, 7]
    seventh = created[7]
    assert seventh.slug == "study-group-7"
    assert seventh.title.ja == "第7回 レアメタル研究会"
    assert seventh.title.en == "Rare Metal Study Group, meeting 7"
    assert seventh.status == EventStatus.closed
    assert seventh.format == EventFormat.online
    assert seventh.timezone == "Asia/Tokyo"
    assert seventh.starts_at == f.at(2020, 7, 17, 5, 30)  # 14:30 in Tokyo
    assert seventh.ends_at == f.at(2020, 7, 17, 9, 0)  # 18:00 in Tokyo
    assert created[6].status == EventStatus.cancelled
    assert (
        session.scalar(sa.select(sa.func.count()).where(AuditEntry.action == "attendance_created"))
        == 4
    )

    again = runner.invoke(args=["attendance", "import", str(path)])
    assert again.exit_code == 0, again.output
    assert again.output.splitlines()[1:3] == [
        "Meetings created: 0.",
        "Attendance: 0 created, 0 changed, 4 unchanged.",
    ]
    assert session.scalar(sa.select(sa.func.count()).select_from(MeetingAttendance)) == 4
    assert session.scalar(sa.select(sa.func.count()).select_from(Event)) == 4
    assert (
        session.scalar(sa.select(sa.func.count()).where(AuditEntry.action.like("attendance_%")))
        == 4
    )


def test_import_changes_only_the_rows_that_differ(app, runner, session, tmp_path):
    _study_group(session)
    session.commit()
    path = tmp_path / "a.csv"
    path.write_text(SMALL, encoding="utf-8")
    assert runner.invoke(args=["attendance", "import", str(path)]).exit_code == 0
    path.write_text(SMALL.replace("1,2002-09-20,47,43,19,23,1", "1,2002-09-20,47,44,20,23,1"))

    result = runner.invoke(args=["attendance", "import", str(path)])

    assert "Attendance: 0 created, 1 changed, 3 unchanged." in result.output
    session.expire_all()
    first = _rows(session)[1]
    assert (first.participants, first.company, first.onsite_participants) == (44, 20, 44)
    assert (
        session.scalar(sa.select(sa.func.count()).where(AuditEntry.action == "attendance_changed"))
        == 1
    )


def test_import_dry_run_saves_nothing(app, runner, session, tmp_path):
    _study_group(session)
    session.commit()
    path = tmp_path / "a.csv"
    path.write_text(SMALL, encoding="utf-8")

    result = runner.invoke(args=["attendance", "import", str(path), "--dry-run"])

    assert result.exit_code == 0
    assert "Attendance: 4 created, 0 changed, 0 unchanged." in result.output
    assert result.output.splitlines()[-1] == "Dry run: nothing was saved."
    assert session.scalar(sa.select(sa.func.count()).select_from(MeetingAttendance)) == 0
    assert session.scalar(sa.select(sa.func.count()).select_from(Event)) == 0


def test_import_refuses_a_file_without_the_columns_or_series(app, runner, session, tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("meeting,date\n1,2002-09-20\n", encoding="utf-8")
    result = runner.invoke(args=["attendance", "import", str(path)])
    assert result.exit_code == 1
    assert "No series with the slug 'study-group'." in result.output

    _study_group(session)
    session.commit()
    result = runner.invoke(args=["attendance", "import", str(path)])
    assert result.exit_code == 1
    assert (
        "missing column(s): participants, company, university, government_other, format"
        in result.output
    )


def test_import_reads_a_file_with_a_byte_order_mark(app, runner, session, tmp_path):
    _study_group(session)
    session.commit()
    path = tmp_path / "excel.csv"
    path.write_bytes(("\ufeff" + HEADER + '\n1,2002/09/20,"1,857",43,19,23,1,onsite,\n').encode())
    result = runner.invoke(args=["attendance", "import", str(path)])
    assert "Attendance: 1 created, 0 changed, 0 unchanged." in result.output
    assert _rows(session)[1].registered == 1857


def test_import_of_the_real_file(app, runner, session):
    series = _study_group(session)
    session.commit()

    result = runner.invoke(args=["attendance", "import", str(REAL_FILE), "--series", series.slug])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"Read 23 valid row(s) from {REAL_FILE}.",
        "Meetings created: 23.",
        "Attendance: 23 created, 0 changed, 0 unchanged.",
        "Breakdown does not add up to the participants (kept as given):",
        "  line 23, meeting 92: participants 314, company + university + government/other = 304",
    ]
    rows = _rows(session)
    assert len(rows) == 23
    assert sorted(rows) == [*range(1, 11), *range(81, 94)]
    assert sum(r.participants for r in rows.values()) == 2954
    assert sum(r.company for r in rows.values()) == 1966
    assert sum(r.university for r in rows.values()) == 642
    assert sum(r.government_other for r in rows.values()) == 336
    assert sum(r.online_participants for r in rows.values()) == 838
    assert sum(r.onsite_participants for r in rows.values()) == 2116
    assert [n for n, r in rows.items() if r.cancelled] == [90]
    assert rows[91].participants == 334 and rows[91].breakdown_total == 334
    assert rows[92].participants == 314 and rows[92].breakdown_total == 304
    # The history counts the mailing list: its own column, not registrations (登録人数).
    assert (rows[93].mailing_list, rows[93].registered) == (2502, None)
    events = {e.number: e for e in session.scalars(sa.select(Event))}
    assert events[90].status == EventStatus.cancelled
    assert events[93].starts_at.date() == date(2020, 11, 6)

    again = runner.invoke(args=["attendance", "import", str(REAL_FILE)])
    assert again.output.splitlines()[1:3] == [
        "Meetings created: 0.",
        "Attendance: 0 created, 0 changed, 23 unchanged.",
    ]


def test_import_after_the_demo_data_uses_its_events(app, runner, session):
    from portal.demo import load_demo

    load_demo(session)
    session.commit()
    before = session.scalar(sa.select(sa.func.count()).select_from(Event))

    result = runner.invoke(args=["attendance", "import", str(REAL_FILE)])

    assert "Meetings created: 0." in result.output
    # The demo loads Table 1 itself (the attendance plugin's demo_data): nothing changes.
    assert "Attendance: 0 created, 0 changed, 23 unchanged." in result.output
    assert session.scalar(sa.select(sa.func.count()).select_from(Event)) == before


def test_import_loads_only_the_meetings_in_its_file(session):
    from plugins.attendance.importer import import_attendance

    series = _study_group(session)
    for number in range(1, 31):  # held meetings, on 1–30 January 2003
        f.event(
            session,
            series,
            number=number,
            status=EventStatus.closed,
            starts_at=f.at(2003, 1, number, 5, 30),
        )
    session.commit()
    loaded = []

    def count(_session, instance):
        if isinstance(instance, Event):
            loaded.append(instance.number)

    sa.event.listen(session, "loaded_as_persistent", count)
    try:
        text = "\n".join(
            [HEADER, "7,2003-01-07,48,34,16,16,2,onsite,", "8,2003-01-08,40,30,15,10,5,onsite,"]
        )
        report = import_attendance(session, text, series)
    finally:
        sa.event.remove(session, "loaded_as_persistent", count)
    assert sorted(loaded) == [7, 8]
    assert (report.events_created, report.created) == (0, 2)
