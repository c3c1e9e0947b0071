from wallet.cli import entry

entry()
