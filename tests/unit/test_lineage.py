"""`~lineage` rows of linked copies, without servers: renamed into the local schema, or derived from foreign keys
as DataJoint 2.x's `rebuild_lineage()` derives them."""

from djshare.formats.lineage import derived, localized
from djshare.sql.catalog import ForeignKey


def test_origins_in_the_source_schema_move_to_the_local_one_linked_or_not() -> None:
    rows = [("enroll", "student_id", "lab.student.student_id"), ("enroll", "dept", "lab.course.dept"),
            ("enroll", "animal", "animals.subject.animal"), ("student", "student_id", "lab.student.student_id")]
    assert localized(rows, "lab", "mine", ["enroll"]) == [
        ("enroll", "animal", "animals.subject.animal"),  # another schema: kept as the source names it
        ("enroll", "dept", "mine.course.dept"),
        ("enroll", "student_id", "mine.student.student_id")]
    assert localized(rows, "lab", "lab_copy", ["student"]) == [("student", "student_id", "lab_copy.student.student_id")]


def test_foreign_keys_are_followed_to_the_table_that_introduces_an_attribute() -> None:
    keys = [ForeignKey(("lab", "section"), ("lab", "course"), (("dept", "dept"), ("course", "course"))),
            ForeignKey(("lab", "course"), ("org", "department"), (("dept", "code"),)),
            ForeignKey(("lab", "current_term"), ("lab", "term"), (("term", "term"),)),
            ForeignKey(("lab", "section"), ("lab", "term"), (("term", "term"),))]
    assert derived("lab", {"section": ["dept", "course", "term", "section", "_hidden"],
                           "current_term": ["omega"]}, keys) == [
        ("current_term", "omega", "lab.current_term.omega"),
        ("current_term", "term", "lab.term.term"),  # not in the key: a foreign key brings it
        ("section", "course", "lab.course.course"),
        ("section", "dept", "org.department.code"),  # renamed and from another schema
        ("section", "section", "lab.section.section"),
        ("section", "term", "lab.term.term")]


def test_a_foreign_key_cycle_ends() -> None:
    keys = [ForeignKey(("lab", "a"), ("lab", "b"), (("x", "x"),)),
            ForeignKey(("lab", "b"), ("lab", "a"), (("x", "x"),))]
    assert derived("lab", {"a": ["x"]}, keys) == [("a", "x", "lab.a.x")]
