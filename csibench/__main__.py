from csibench.cli import main

main()
