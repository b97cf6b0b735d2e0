from minimath import log


def test_metrics_reach_every_logger_at_the_step_given():
    class Recording:
        def __init__(self):
            self.records = []

        def log_metrics(self, metrics, step=None):
            self.records.append((step, metrics))

    loggers = [Recording(), Recording()]
    log.to_loggers(loggers, {"train/loss": 2.5}, step=256)
    assert [r.records for r in loggers] == [[(256, {"train/loss": 2.5})]] * 2
