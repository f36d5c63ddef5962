from click.testing import CliRunner

import tigress
from tigress.cli import main


def test_cli_reports_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert tigress.__version__ in result.output
