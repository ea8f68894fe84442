from tests.conftest import Lab, fill_pipeline


def test_pull_everything(lab: Lab) -> None:
    fill_pipeline(lab.pipeline)
    Scan = lab.linked("Scan")
    report = Scan().pull()
    assert report.pulled == 10
    assert len(Scan()) == 10
    assert len(Scan.Channel()) == 20
