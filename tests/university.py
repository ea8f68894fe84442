"""DataJoint's own university pipeline (tests/schema_university.py and tests/integration/test_university.py of
datajoint-python, at 8e6ef316), for checking linked copies with a real DataJoint client: declared by either
DataJoint line, filled with the same generated rows, and queried by DataJoint 2.x (joins, restrictions, unions and
aggregations across tables, which 2.x allows only when `~lineage` says the namesakes are one attribute).

Changes from the original: `term_year` is `int16` (PostgreSQL has no `year`), strings in restrictions are in single
quotes (PostgreSQL reads double quotes as names), and the rows are generated here (a few hundred, seeded) instead
of read from its CSV files.
"""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal
from typing import Any

# (class name, tier, definition) in foreign-key order; types as DataJoint 2.x spells them
TABLES: tuple[tuple[str, str, str], ...] = (
    ("Student", "Manual", """
    student_id : int64   # university-wide ID number
    ---
    first_name      : varchar(40)
    last_name       : varchar(40)
    sex             : enum('F', 'M', 'U')
    date_of_birth   : date
    home_state      : char(2)      # US state acronym: e.g. OH
    """),
    ("Department", "Manual", """
    dept : varchar(6)   # abbreviated department name, e.g. BIOL
    ---
    dept_name    : varchar(200)  # full department name
    """),
    ("StudentMajor", "Manual", """
    -> Student
    ---
    -> Department
    declare_date :  date  # when student declared her major
    """),
    ("Course", "Manual", """
    -> Department
    course  : int64   # course number, e.g. 1010
    ---
    course_name :  varchar(200)  # e.g. "Neurobiology of Sensation and Movement."
    credits     :  decimal(3,1)  # number of credits earned by completing the course
    """),
    ("Term", "Manual", """
    term_year : int16
    term      : enum('Spring', 'Summer', 'Fall')
    """),
    ("Section", "Manual", """
    -> Course
    -> Term
    section : char(1)
    ---
    auditorium   :  varchar(12)
    """),
    ("CurrentTerm", "Manual", """
    omega=0 : int8
    ---
    -> Term
    """),
    ("Enroll", "Manual", """
    -> Student
    -> Section
    """),
    ("LetterGrade", "Lookup", """
    grade : char(2)
    ---
    points : decimal(3,2)
    """),
    ("Grade", "Manual", """
    -> Enroll
    ---
    -> LetterGrade
    """),
)
DJ014_TYPES = {"int64": "bigint", "int16": "smallint", "int8": "tinyint"}
GRADES = (("A", "4.00"), ("A-", "3.67"), ("B+", "3.33"), ("B", "3.00"), ("B-", "2.67"), ("C+", "2.33"),
          ("C", "2.00"), ("C-", "1.67"), ("D+", "1.33"), ("D", "1.00"), ("F", "0.00"))
STATES = ("UT", "OK", "NM", "TX", "CA", "OH", "NY", "WA")
DEPARTMENTS = ("BIOL", "MATH", "CS", "PHYS")


def declare(schema: Any, dj: Any, line: str = "dj2") -> dict[str, Any]:
    """Declare the tables in `schema` with DataJoint module `dj` (`line`: "dj2" or "dj014"); return the classes."""
    classes: dict[str, Any] = {}
    for name, tier, definition in TABLES:
        if line == "dj014":
            for new, old in DJ014_TYPES.items():
                definition = definition.replace(f": {new}", f": {old}")
        cls = type(name, (getattr(dj, tier),), {"definition": definition, "__module__": __name__})
        classes[name] = schema(cls, context=classes)
    return classes


def rows(seed: int = 7) -> dict[str, list[dict[str, Any]]]:
    """The same few hundred rows for every caller, by class name in foreign-key order."""
    pick = random.Random(seed)
    students = [{"student_id": i, "first_name": f"First{i}", "last_name": f"Last {i}'s",
                 "sex": pick.choice("FMU"), "date_of_birth": date(1975 + pick.randrange(30), 1 + pick.randrange(12),
                                                                  1 + pick.randrange(28)),
                 "home_state": pick.choice(STATES)} for i in range(1, 81)]
    departments = [{"dept": d, "dept_name": f"Department of {d}"} for d in DEPARTMENTS]
    majors = [{"student_id": s["student_id"], "dept": pick.choice(DEPARTMENTS),
               "declare_date": date(2019, 1 + pick.randrange(12), 1 + pick.randrange(28))}
              for s in students if pick.random() < 0.75]
    courses = [{"dept": d, "course": 1000 + 10 * n, "course_name": f"{d} course {n}",
                "credits": Decimal(pick.choice(("1.0", "3.0", "4.5")))} for d in DEPARTMENTS for n in range(5)]
    terms = [{"term_year": year, "term": term} for year in (2020, 2021) for term in ("Spring", "Summer", "Fall")]
    sections = [{"dept": c["dept"], "course": c["course"], "term_year": t["term_year"], "term": t["term"],
                 "section": letter, "auditorium": f"A{pick.randrange(100)}"}
                for c in courses for t in terms if pick.random() < 0.5 for letter in "ab"[:1 + pick.randrange(2)]]
    current = [{"omega": 0, "term_year": 2021, "term": "Fall"}]
    enrolls = []
    for s in students:
        for section in pick.sample(sections, pick.randrange(8)):
            enrolls.append({"student_id": s["student_id"], **{k: section[k] for k in
                                                               ("dept", "course", "term_year", "term", "section")}})
    grades = [{**e, "grade": pick.choice(GRADES)[0]} for e in enrolls if pick.random() < 0.9]
    return {"Student": students, "Department": departments, "StudentMajor": majors, "Course": courses,
            "Term": terms, "Section": sections, "CurrentTerm": current, "Enroll": enrolls,
            "LetterGrade": [{"grade": g, "points": Decimal(p)} for g, p in GRADES], "Grade": grades}


def fill(classes: dict[str, Any], seed: int = 7) -> None:
    for name, found in rows(seed).items():
        classes[name].insert(found, skip_duplicates=name == "LetterGrade")


def _plain(value: Any) -> Any:
    """A value as both backends give it back (a decimal from MariaDB may be a float from PostgreSQL, or so)."""
    if isinstance(value, Decimal | float):
        return round(float(value), 2)
    return value.item() if hasattr(value, "item") else value


def _keys(query: Any) -> list[tuple[Any, ...]]:
    return sorted(tuple(_plain(v) for v in row.values()) for row in query.keys(order_by="KEY"))


def _dicts(query: Any) -> list[tuple[Any, ...]]:
    return sorted(tuple(_plain(v) for v in row.values()) for row in query.to_dicts(order_by="KEY"))


def queries(uni: Any, grouped_with_ellipsis: bool = True) -> dict[str, Any]:
    """The university tests' queries (DataJoint 2.x API) on module `uni` (a `dj.VirtualModule`), as plain values.

    `grouped_with_ellipsis=False` leaves out `aggr(..., ...)`, which DataJoint 2.3.5 cannot run on MariaDB
    (ONLY_FULL_GROUP_BY: "'section.auditorium' isn't in GROUP BY"; MySQL 8 sees the functional dependency)."""
    Student, Enroll, CurrentTerm, StudentMajor = uni.Student, uni.Enroll, uni.CurrentTerm, uni.StudentMajor
    Course, Grade, LetterGrade, Section = uni.Course, uni.Grade, uni.LetterGrade, uni.Section
    millennials = Student & "date_of_birth between '1981-01-01' and '1996-12-31'"
    ungraded = Enroll * CurrentTerm - Grade
    major = StudentMajor.proj(..., major="dept")
    found = {
        "utahns": (len(Student & {"home_state": "UT"}), len(Student & "home_state='UT'")),
        "southwest": _keys(Student & [{"home_state": s} for s in ("OK", "NM", "TX")]),
        "millennials without math": _keys(millennials - (Enroll & "dept='MATH'")),
        "inactive": _keys(Student - (Enroll & CurrentTerm)),
        "special": _keys(Student & [Enroll, StudentMajor - {"dept": "MATH"}] & {"sex": "F"}),
        "ungraded": _keys(ungraded),
        "ungraded with major": (len(ungraded.join(major, left=True)), len(ungraded.join(major)),
                                len(ungraded & major)),
        "union": _keys((Enroll & "student_id=1") + (Enroll & "student_id=2")),
        "average grade": _dicts(Course.aggr(Grade * LetterGrade, avg_grade="round(avg(points), 2)")),
        "gpa": _dicts(Student.aggr(Course * Grade * LetterGrade, gpa="round(sum(points*credits)/sum(credits), 2)",
                                   exclude_nonmatching=True)),
        "empty biology sections": _dicts((Section & {"dept": "BIOL"}).aggr(Enroll, n="count(student_id)") & "n=0"),
    }
    if grouped_with_ellipsis:
        found["busy biology sections"] = _dicts((Section & {"dept": "BIOL"}).aggr(Grade, ..., n="count(student_id)")
                                                & "n>1")
    return found


def nonempty(results: dict[str, Any]) -> bool:
    """Every query found something (so that equal results mean something)."""
    return all(value not in ([], (0, 0), (0, 0, 0)) for value in results.values())
