from akros_kubesim.cli import main

main()
