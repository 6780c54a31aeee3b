from pte_cli.cli import main

main()
